"""SAGAN: Skip-Attention GAN for Anomaly Detection (Liu et al., ICIP 2021).

Skip-GANomaly with SAGAN's generator: CBAM attention (channel, then spatial; timm's ``CbamModule``) after each
U-Net block, depthwise separable convolutions (timm's ``SeparableConv2d``), pooling instead of strided
convolution down and bilinear interpolation instead of transposed convolution up. Losses, discriminator and
anomaly score are Skip-GANomaly's, as the paper states; the networks are in
:mod:`anomalib_cbigan.models.skipganomaly.torch_model` (``SkipganomalyModel(sagan=True)``).

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
from anomalib_cbigan.registry import register_model


@register_model
class Sagan(Skipganomaly, AnomalibModule):  # AnomalibModule listed again: get_model() only scans direct subclasses
    """SAGAN Lightning module: every argument of :class:`~anomalib_cbigan.Skipganomaly`, SAGAN's generator."""

    sagan = True
