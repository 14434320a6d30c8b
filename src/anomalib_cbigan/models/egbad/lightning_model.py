"""EGBAD: Efficient GAN-Based Anomaly Detection (Zenati et al., 2018) as CBiGAN with alpha = 0.

The paper's formula (eq. 13) gives the plain BiGAN at ``alpha = 0`` (its text says
``alpha = 1``; the formula is followed, see this folder's README). Like the CBiGAN paper's
own EGBAD baseline, this is the Wasserstein BiGAN with gradient penalty and the same
networks and anomaly score; only the consistency term is off.

Example:
    >>> from anomalib_cbigan import Egbad
    >>> Egbad(input_size=(64, 64)).alpha
    0.0
"""

from __future__ import annotations

import inspect
from typing import Any

from anomalib.models.components import AnomalibModule

from anomalib_cbigan.models.cbigan import Cbigan

_CBIGAN = inspect.signature(Cbigan, eval_str=True)


class Egbad(Cbigan, AnomalibModule):  # AnomalibModule listed again: get_model() only scans direct subclasses
    """EGBAD Lightning module: the Wasserstein BiGAN without a consistency term.

    Takes every argument of :class:`~anomalib_cbigan.Cbigan` except ``alpha``, which is 0.
    """

    # Cbigan's arguments but alpha, as inspect (and so the registry) reports them; jsonargparse, behind anomalib's
    # CLI, reads the same from the call below.
    __signature__ = _CBIGAN.replace(parameters=[p for name, p in _CBIGAN.parameters.items() if name != "alpha"])

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401
        if "alpha" in kwargs:
            msg = f"Egbad is CBiGAN with alpha = 0 and takes no alpha (got {kwargs['alpha']}): use Cbigan(alpha=...)"
            raise TypeError(msg)
        super().__init__(alpha=0.0, **kwargs)
        # Lightning saved the parent's alpha=0 among the hyper-parameters; load_from_checkpoint would pass it back.
        for hparams in (self._hparams, self._hparams_initial):
            hparams.pop("alpha", None)
