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

from collections.abc import Sequence

from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer

from anomalib_cbigan.models.cbigan import Cbigan
from anomalib_cbigan.registry import register_model


@register_model
class Egbad(Cbigan, AnomalibModule):  # AnomalibModule listed again: get_model() only scans direct subclasses
    """EGBAD Lightning module: the Wasserstein BiGAN without a consistency term.

    Takes every argument of :class:`~anomalib_cbigan.Cbigan` except ``alpha``, which is 0.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (128, 128),
        latent_dim: int = 64,
        lambda_: float = 0.1,
        lr: float = 1e-4,
        generator_betas: Sequence[float] = (0.0, 0.1),
        critic_betas: Sequence[float] = (0.0, 0.9),
        critic_steps: int = 5,
        gp_weight: float = 10.0,
        batch_size: int | None = None,
        channels: int = 3,
        feature_layer: str = "image_stem",
        anomaly_map_sigma: float = 4.0,
        tile_images: bool = False,
        channels_last: bool = True,
        training_precision: str = "32",
        init: str = "glorot_uniform",
        penalty_pairing: str = "official",
        weight_average_decay: float = 0.0,
        weight_average_every: int = 10,
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        super().__init__(
            input_size=input_size,
            latent_dim=latent_dim,
            alpha=0.0,
            lambda_=lambda_,
            lr=lr,
            generator_betas=generator_betas,
            critic_betas=critic_betas,
            critic_steps=critic_steps,
            gp_weight=gp_weight,
            batch_size=batch_size,
            channels=channels,
            feature_layer=feature_layer,
            anomaly_map_sigma=anomaly_map_sigma,
            tile_images=tile_images,
            channels_last=channels_last,
            training_precision=training_precision,
            init=init,
            penalty_pairing=penalty_pairing,
            weight_average_decay=weight_average_decay,
            weight_average_every=weight_average_every,
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        # The parent's frame put alpha=0 into the saved hyper-parameters; Egbad takes no alpha,
        # so leave it out or load_from_checkpoint would pass it back.
        for hparams in (self._hparams, self._hparams_initial):
            hparams.pop("alpha", None)
