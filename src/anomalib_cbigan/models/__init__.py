"""The models of this package; importing this module registers them with anomalib."""

from .cbigan import Cbigan
from .egbad import Egbad
from .fcbigan import Fcbigan
from .sagan import Sagan
from .skipganomaly import Skipganomaly

__all__ = ["Cbigan", "Egbad", "Fcbigan", "Sagan", "Skipganomaly"]
