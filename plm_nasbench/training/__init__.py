"""Fine-tuning, the six super-network strategies, cached super-networks and standalone fine-tuning."""

from .finetune import TrainingSettings, finetune
from .standalone import finetune_standalone
from .strategies import STRATEGIES, StrategySettings
from .supernetwork import train_supernetwork

__all__ = ["STRATEGIES", "StrategySettings", "TrainingSettings", "finetune", "finetune_standalone",
           "train_supernetwork"]
