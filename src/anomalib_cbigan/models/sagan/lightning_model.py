"""SAGAN: Skip-Attention GAN for Anomaly Detection (Liu et al., ICIP 2021).

Skip-GANomaly with SAGAN's generator blocks (:data:`~anomalib_cbigan.models.sagan.torch_model.SAGAN_BLOCKS`: CBAM
attention after each U-Net block, depthwise separable convolutions, pooling down, bilinear up-sampling); losses,
discriminator and anomaly score are Skip-GANomaly's, as the paper states.

Example:
    >>> from anomalib_cbigan import Sagan
    >>> Sagan(input_size=(32, 32)).model.name
    'SAGAN'

Paper:
    Liu, Lan, Zhang, Huang, Wang, "SAGAN: Skip-Attention GAN for Anomaly Detection", ICIP 2021.
"""

from __future__ import annotations

from anomalib.models.components import AnomalibModule

from anomalib_cbigan.models.skipganomaly import Skipganomaly

from .torch_model import SAGAN_BLOCKS


class Sagan(Skipganomaly, AnomalibModule):  # AnomalibModule listed again: get_model() only scans direct subclasses
    """SAGAN Lightning module: every argument of :class:`~anomalib_cbigan.Skipganomaly`, SAGAN's generator blocks."""

    blocks = SAGAN_BLOCKS
