"""Evaluation: predictions and scores, the real evaluator of sub-networks, FLOPs and latency."""
