"""Task metrics and the error the benchmark reports (error = 1 - metric)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Fraction of exact matches."""
    return float(np.mean(np.asarray(labels) == np.asarray(predictions)))


def f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """F1 of the positive class (label 1); 0 when there are no true positives."""
    labels, predictions = np.asarray(labels) == 1, np.asarray(predictions) == 1
    tp = np.sum(labels & predictions)
    if tp == 0:
        return 0.0
    precision, recall = tp / predictions.sum(), tp / labels.sum()
    return float(2 * precision * recall / (precision + recall))


def matthews(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Matthews correlation coefficient of binary labels; 0 when a margin is constant."""
    y, p = np.asarray(labels) == 1, np.asarray(predictions) == 1
    tp, tn = float(np.sum(y & p)), float(np.sum(~y & ~p))
    fp, fn = float(np.sum(~y & p)), float(np.sum(y & ~p))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def spearman(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); 0 when either side is constant."""
    from scipy.stats import rankdata

    a, b = rankdata(labels), rankdata(predictions)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews": matthews,
    "spearman": spearman,
}


def constant_prediction_error(metric: str, labels: np.ndarray, regression: bool) -> float:
    """The lowest error (1 - metric) of a model that ignores its input: the best single class for every
    example, chosen with ``labels`` themselves (an optimistic baseline), or for regression a constant
    (whose Spearman correlation is 0, error 1). A fine-tuned model no better than this has learned nothing."""
    labels = np.asarray(labels)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if labels.size == 0:
        raise ValueError("labels is empty: a constant predictor's error needs at least one label")
    if regression:
        return 1.0 - METRICS[metric](labels, np.zeros(len(labels)))
    return min(1.0 - METRICS[metric](labels, np.full(len(labels), c)) for c in np.unique(labels))


def predictions_from_logits(logits: np.ndarray, regression: bool) -> np.ndarray:
    """Class predictions (argmax) or, for regression, the single output."""
    logits = np.asarray(logits)
    return logits.reshape(len(logits)) if regression else logits.argmax(axis=-1)
