"""Fine-tuning, the six super-network strategies and standalone fine-tuning of sub-networks."""

from .finetune import TrainingSettings, finetune
from .strategies import STRATEGIES, StrategySettings

__all__ = ["STRATEGIES", "StrategySettings", "TrainingSettings", "finetune"]
