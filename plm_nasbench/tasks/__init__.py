"""Tasks: reading data (GLUE folder layout or the Hugging Face Hub), the paper's splits, and metrics."""

from .examples import Examples
from .loading import DATASETS_ENV, TaskData, load_task
from .metrics import METRICS, predictions_from_logits
from .specs import TASKS, TaskSpec, get_task_spec

__all__ = ["DATASETS_ENV", "METRICS", "TASKS", "Examples", "TaskData", "TaskSpec", "get_task_spec", "load_task",
           "predictions_from_logits"]
