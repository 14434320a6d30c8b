"""CBiGAN model (Carrara et al., ICPR 2020)."""

from .lightning_model import Cbigan
from .torch_model import CbiganModel

__all__ = ["Cbigan", "CbiganModel"]
