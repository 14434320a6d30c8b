"""SAGAN: Skip-Attention GAN (Liu et al., ICIP 2021)."""

from .lightning_model import Sagan

__all__ = ["Sagan"]
