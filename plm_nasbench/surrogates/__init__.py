"""Surrogates that fill the ``small`` space between table points (XGBoost ensembles; no torch)."""

from .ensemble import EnsembleRegressor
from .small import LEARNED, SmallSpaceSurrogate

__all__ = ["EnsembleRegressor", "LEARNED", "SmallSpaceSurrogate"]
