"""EGBAD model (Zenati et al., 2018): CBiGAN with alpha = 0."""

from .lightning_model import Egbad

__all__ = ["Egbad"]
