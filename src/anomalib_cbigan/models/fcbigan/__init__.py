"""FCBiGAN (Peccia, PoliMi 2021): fully convolutional BiGAN for full-resolution texture images."""

from .lightning_model import Fcbigan

__all__ = ["Fcbigan"]
