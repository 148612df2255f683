"""Task loss and in-place distillation loss."""

from __future__ import annotations

from typing import Any


def task_loss(logits: Any, labels: Any, regression: bool) -> Any:
    """Cross-entropy on class (or choice) logits; MSE for regression."""
    import torch.nn.functional as F

    if regression:
        return F.mse_loss(logits.view(-1).float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


def distillation_loss(student: Any, teacher: Any, labels: Any, regression: bool, temperature: float) -> Any:
    """Distillation from the teacher's (detached) logits plus the task loss.

    Classification: KL divergence of ``softmax(student / T)`` from ``softmax(teacher / T)``, times ``T**2``
    (the cross-entropy against the teacher's soft targets up to its constant entropy: same gradients).
    Regression: mean squared error to the teacher's output.
    """
    import torch.nn.functional as F

    teacher = teacher.detach().float()
    student_f = student.float()
    if regression:
        soft = F.mse_loss(student_f.view(-1), teacher.view(-1))
    else:
        soft = F.kl_div(F.log_softmax(student_f / temperature, dim=-1), F.log_softmax(teacher / temperature, dim=-1),
                        reduction="batchmean", log_target=True) * temperature ** 2
    return soft + task_loss(student, labels, regression)
