"""Models: the registry of pre-trained encoders, masked and extracted sub-networks, fine-tuned checkpoints.

Importing this package imports torch.
"""

from .checkpoints import load_checkpoint, read_provenance, save_checkpoint
from .extraction import extract_subnetwork, load_subnetwork
from .masking import masked
from .registry import architecture_of, head_of, load_model, load_tokenizer, model_location
from .structure import encoder_layers

__all__ = ["architecture_of", "encoder_layers", "extract_subnetwork", "head_of", "load_checkpoint", "load_model",
           "load_subnetwork", "load_tokenizer", "masked", "model_location", "read_provenance", "save_checkpoint"]
