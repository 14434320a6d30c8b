"""Skip-GANomaly (Akçay et al., IJCNN 2019)."""

from .lightning_model import Skipganomaly
from .torch_model import SkipganomalyModel

__all__ = ["Skipganomaly", "SkipganomalyModel"]
