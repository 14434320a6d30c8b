"""What every GAN model of this package does the same way in Lightning, as a mixin for ``AnomalibModule`` classes.

The training step of every model is a sequence of :meth:`OneClassGanMixin.adversarial_step` calls (one optimiser
step of the generator side or of the critic: loss under the training precision, divergence check, backward,
step, epoch-mean log) closed by :meth:`OneClassGanMixin.end_training_batch` (the checkpointed batch counter and
the moving average of the generator side's weights); each model supplies only its losses and its schedule.

A mixin, not an ``AnomalibModule`` subclass, so that anomalib's CLI and ``get_model`` (which
list ``AnomalibModule`` subclasses) see only the real models. Each model lists it before
``AnomalibModule``: ``class Cbigan(OneClassGanMixin, AnomalibModule)``.

Example:
    >>> from anomalib_cbigan import Cbigan, Fcbigan
    >>> from anomalib_cbigan.models.gan_module import OneClassGanMixin
    >>> issubclass(Cbigan, OneClassGanMixin) and issubclass(Fcbigan, OneClassGanMixin)
    True
"""

from __future__ import annotations

import inspect
import logging
import math
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from anomalib import LearningType
from anomalib.data import Batch
from anomalib.metrics import Evaluator
from anomalib.pre_processing import PreProcessor
from anomalib.utils.serialization import anomalib_safe_globals
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torchvision.transforms.v2 import Compose, Normalize, Resize

from anomalib_cbigan.data.tree_checks import SUBSETS, DatasetError, check_batches_stack, listed, unreadable_images
from anomalib_cbigan.metrics import default_evaluator
from anomalib_cbigan.models.gan_training import check_loss, frozen

logger = logging.getLogger(__name__)

RNG_STATES = "anomalib_cbigan_rng_states"
# Training precisions the models take: float32, or bf16 autocast of the training steps (CPU and CUDA).
TRAINING_PRECISIONS = ("32", "bf16-mixed")
MODEL_CLASS = "anomalib_cbigan_model"
_SHOWN = 3
# The two sides of every model's optimisers, in configure_optimizers' order: E and G (or G alone), then D.
GENERATOR, CRITIC = "generator", "critic"
LossAndLogs = torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not belong to the model it is loaded into; the message says whose it is."""


def check_written_by(name: str, checkpoint: dict[str, Any]) -> None:
    """Raise :class:`CheckpointMismatchError` if ``checkpoint`` carries another model class's mark than ``name``."""
    written_by = checkpoint.get(MODEL_CLASS)
    if written_by is not None and written_by != name:
        msg = (
            f"This checkpoint was written by {written_by}, not {name}: load it with "
            f"{written_by}.load_from_checkpoint(...) or `--model {written_by}`."
        )
        raise CheckpointMismatchError(msg)


def check_checkpoint_matches(model: Any, checkpoint: dict[str, Any]) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` holds weights of ``model``'s class and shapes.

    Checked before the weights are loaded, so the user reads which model wrote the checkpoint (or which
    hyper-parameters differ) instead of a list of hundreds of missing and unexpected keys.
    """
    name = type(model).__name__
    check_written_by(name, checkpoint)
    expected = {key: value.shape for key, value in model.state_dict().items() if key.startswith("model.")}
    found = {key: value.shape for key, value in checkpoint.get("state_dict", {}).items() if key.startswith("model.")}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        msg = (
            f"This checkpoint is not a {name} checkpoint (another model's?): {len(missing)} of {name}'s weights are "
            f"missing (e.g. {missing[:_SHOWN]}) and it has {len(unexpected)} weights {name} does not "
            f"(e.g. {unexpected[:_SHOWN]})."
        )
        raise CheckpointMismatchError(msg)
    reshaped = [key for key in expected if expected[key] != found[key]]
    if reshaped:
        saved = checkpoint.get("hyper_parameters", {})
        differ = {key: (saved[key], value) for key, value in dict(model.hparams).items()
                  if key in saved and str(saved[key]) != str(value)}  # fmt: skip
        detail = ", ".join(f"{key}: checkpoint {old!r}, this model {new!r}" for key, (old, new) in differ.items())
        msg = (
            f"This {name} checkpoint was trained with other hyper-parameters ({detail or 'see its hyper_parameters'}): "
            f"{len(reshaped)} weights differ in shape (e.g. {reshaped[0]}: {tuple(found[reshaped[0]])} in the "
            f"checkpoint, {tuple(expected[reshaped[0]])} here). Build the model with the checkpoint's values, or "
            f"use {name}.load_from_checkpoint(...), which does."
        )
        raise CheckpointMismatchError(msg)


def check_datamodule_images(datamodule: Any) -> None:  # noqa: ANN401
    """Raise :class:`~anomalib_cbigan.data.tree_checks.DatasetError` naming every unreadable image or mask file
    of ``datamodule``'s training, validation and test sets (those set up); anything else passes.

    Example:
        >>> check_datamodule_images(None)  # no datamodule (plain dataloaders): nothing to check
    """
    roles: dict[str, str] = {}  # path -> "test image", ...; a file in several subsets is checked and named once
    for subset, role in SUBSETS.items():
        samples = getattr(getattr(datamodule, subset, None), "samples", None)
        if samples is None:
            continue
        for column, kind in (("image_path", "image"), ("mask_path", "mask")):
            if column in samples:
                for path in samples[column]:
                    if isinstance(path, str | Path) and str(path):
                        roles.setdefault(str(path), f"{role} {kind}")
    problems = [f"{roles[path]} {path}: {reason}" for path, reason in unreadable_images(roles).items()]
    if problems:
        name = getattr(datamodule, "name", type(datamodule).__name__)
        msg = (
            f"{len(problems)} file(s) of the {name} data cannot be read as images; replace or remove them "
            f"(nothing was trained):\n{listed(problems)}"
        )
        raise DatasetError(msg)


def rng_states() -> dict[str, Any]:
    """torch's, numpy's and Python's generator states as plain data (checkpoints load with ``weights_only``)."""
    name, keys, position, has_gauss, cached = np.random.get_state()  # the global one is what we save
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), int(position), int(has_gauss), float(cached)],
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states`.

    Example:
        >>> import torch
        >>> saved = rng_states(); first = torch.rand(3)
        >>> restore_rng_states(saved); torch.equal(first, torch.rand(3))
        True
    """
    torch.set_rng_state(states["torch"])
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    random.setstate((states["python_version"], tuple(states["python"]), None))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def tanh_range_pre_processor(image_size: tuple[int, int] | None) -> PreProcessor:
    """Resize to ``image_size`` (unless ``None``) and scale [0, 1] images to the generators' tanh range [-1, 1].

    The resize antialiases, as anomalib's own pre-processors: MVTec AD's 900-px images brought to 64 or 128 px
    without it are aliased (every 14th pixel sampled), a noise no generator reconstructs (docs/cbigan.md, "CPU
    recipes on bottle", measures what it cost). anomalib's exported graph cannot antialias (its ``export_transform`` drops it), so deployed models should be given images already at
    ``image_size`` (export with ``--input_size`` and resize before inference), as the README's deployment says.

    Example:
        >>> [type(t).__name__ for t in tanh_range_pre_processor((64, 64)).transform.transforms]
        ['Resize', 'Normalize']
    """
    normalize = Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    if image_size is None:
        return PreProcessor(transform=Compose([normalize]))
    return PreProcessor(transform=Compose([Resize(image_size, antialias=True), normalize]))


class OneClassGanMixin:
    """The GAN training step's common sequence, ``batch_size``, memory-format and precision hyper-parameters,
    validation step, evaluator and trainer settings of our GAN models.

    The class using it sets ``self.batch_size`` (``None`` keeps the datamodule's) and ``self.model``
    (a torch model with a ``critic``, returning ``InferenceBatch`` in eval mode), calls :meth:`configure_speed`
    and :meth:`init_gan_training`, and returns ``[generator optimiser, critic optimiser]`` from
    ``configure_optimizers``.
    """

    batch_size: int | None
    channels_last: bool
    training_precision: str
    batches_seen: torch.Tensor
    lr: float
    # Models that keep a moving average of the generator side's weights (``model.update_weight_average``) set these.
    weight_average_decay: float = 0.0
    weight_average_every: int = 1
    # The paper's (or thesis's) settings, where the constructor's defaults are made for a CPU budget instead.
    paper_settings: ClassVar[dict[str, Any]] = {}

    @classmethod
    def paper(cls, **overrides: Any) -> Any:  # noqa: ANN401
        """The model with its paper's settings (:attr:`paper_settings`, those it takes), ``overrides`` over them.

        Example:
            >>> from anomalib_cbigan import Cbigan
            >>> Cbigan.paper(input_size=(64, 64)).critic_steps
            5
        """
        settings = {key: value for key, value in cls.paper_settings.items() if key in inspect.signature(cls).parameters}
        return cls(**{**settings, **overrides})

    def init_gan_training(self) -> None:
        """Manual optimisation, and the batch counter (a buffer: a resumed run continues the step schedule)."""
        self.automatic_optimization = False
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def divergence_causes(self) -> str:
        """What a diverged loss most likely means for this model (named in the error)."""
        return f"learning rate too high ({self.learning_rates()})"

    def learning_rates(self) -> str:
        """``lr``, and the critic's own where ``critic_lr_ratio`` sets it apart (the options a user would change)."""
        ratio = getattr(self, "critic_lr_ratio", 1.0)
        critic = "" if ratio == 1 else f"; the critic's {self.lr * ratio:g}, critic_lr_ratio={ratio:g}"
        return f"lr={self.lr}{critic}"

    def adversarial_step(
        self, side: str, compute_loss: Callable[[], LossAndLogs], images: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One optimiser step of ``side`` (:data:`GENERATOR`, the critic frozen; or :data:`CRITIC`).

        ``compute_loss`` runs under the training precision and returns the loss, or the loss and other values to
        log. A diverged loss stops training before the step (:func:`~anomalib_cbigan.models.gan_training.check_loss`).
        The loss (``<side>_loss``) and the other values are logged as epoch means, weighted by the number of
        ``images``, and returned, detached.
        """
        generator_optimizer, critic_optimizer = self.optimizers()
        optimizer = generator_optimizer if side == GENERATOR else critic_optimizer
        with frozen(self.model.critic) if side == GENERATOR else nullcontext():
            with self.training_autocast(images):
                result = compute_loss()
            loss, logs = result if isinstance(result, tuple) else (result, {})
            check_loss(loss, f"{side}_loss", model=self.name, step=int(self.batches_seen), epoch=self.current_epoch,
                       causes=self.divergence_causes(), checkpoint=self.last_checkpoint())  # fmt: skip
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
        values = {f"{side}_loss": loss.detach(), **{name: value.detach() for name, value in logs.items()}}
        for name, value in values.items():
            self.log(name, value, prog_bar=name == f"{side}_loss", on_step=False, on_epoch=True, batch_size=len(images))
        return values

    def patches_per_image(self, patches_per_epoch: int) -> int:
        """Patches to draw from each training image so that an epoch has about ``patches_per_epoch``."""
        dataset = getattr(self.trainer.train_dataloader, "dataset", None) if self._trainer is not None else None
        images = len(dataset) if dataset is not None else 1
        return max(1, math.ceil(patches_per_epoch / max(images, 1)))

    def end_training_batch(self) -> None:
        """Count the batch; every ``weight_average_every`` batches, update the moving average (if the model keeps one)."""
        self.batches_seen += 1
        if self.weight_average_decay and int(self.batches_seen) % self.weight_average_every == 0:
            self.model.update_weight_average(self.weight_average_decay)

    def configure_speed(self, channels_last: bool, training_precision: str) -> None:
        """Put the networks in ``channels_last`` memory format (if asked) and keep the training precision.

        ``channels_last`` (NHWC) is what oneDNN's CPU convolutions and cuDNN's tensor-core kernels are fastest
        in; it changes the layout, not the numbers. ``"bf16-mixed"`` autocasts the training steps to bfloat16;
        validation, test and export stay float32, so scores do not depend on it.
        """
        if training_precision not in TRAINING_PRECISIONS:
            fp16 = str(training_precision).startswith("16")
            hint = " (fp16 would need a gradient scaler, which these training steps do not use: use bf16-mixed)" if fp16 else ""
            msg = f"training_precision must be one of {TRAINING_PRECISIONS}, got {training_precision!r}{hint}"
            raise ValueError(msg)
        self.channels_last = bool(channels_last)
        self.training_precision = training_precision
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def in_memory_format(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` in the networks' memory format (a no-op for NCHW networks)."""
        if self.channels_last and images.ndim == 4:  # noqa: PLR2004
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def training_autocast(self, images: torch.Tensor) -> AbstractContextManager:
        """bf16 autocast on ``images``' device when ``training_precision`` is ``"bf16-mixed"``, else nothing."""
        enabled = self.training_precision == "bf16-mixed"
        return torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=enabled)

    def setup(self, stage: str) -> None:
        """Apply the ``batch_size`` hyper-parameter to the datamodule before its loaders exist, and check that its
        images can be batched (:func:`~anomalib_cbigan.data.tree_checks.check_batches_stack`)."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and self.batch_size is not None and datamodule is not None:
            if getattr(datamodule, "train_batch_size", self.batch_size) != self.batch_size:
                logger.info("%s: training with batch_size=%d (model hyper-parameter)", self.name, self.batch_size)
            datamodule.train_batch_size = self.batch_size
        if datamodule is not None:  # set up by now, with this model's resize in its subsets' augmentations
            check_batches_stack(datamodule, type(self).__name__)

    def on_fit_start(self) -> None:
        """Check that every image and mask of the datamodule can be read, before the first step.

        Whichever datamodule the user picks (anomalib's ``MVTecAD``, ``Folder``, ...), a truncated PNG would
        otherwise stop training at the batch that holds it with PIL's ``OSError: image file is truncated``, which
        names no file. No pixel is decoded, so the check is cheap next to one training epoch.
        """
        super().on_fit_start()  # type: ignore[misc]
        check_datamodule_images(getattr(self.trainer, "datamodule", None))

    def validation_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Score the batch; anomalib's post-processor collects normalisation and thresholds."""
        del args, kwargs
        predictions = self.model(batch.image)
        return batch.update(**predictions._asdict())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also save the random number generators' states (Lightning does not), so a resumed run draws the same
        priors, patches and shuffles as an uninterrupted one, and the model's class name."""
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        checkpoint[RNG_STATES] = rng_states()
        checkpoint[MODEL_CLASS] = type(self).__name__

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check the checkpoint is this model's; restore the generators' states when resuming a fit (not when
        loading a model to use it)."""
        check_checkpoint_matches(self, checkpoint)
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
        trainer = self._trainer
        if RNG_STATES in checkpoint and trainer is not None and trainer.state.fn == TrainerFn.FITTING:
            restore_rng_states(checkpoint[RNG_STATES])

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """anomalib's, once the checkpoint's class mark is this class's: another model's hyper-parameters would
        build this one wrongly, or not at all (a Cbigan checkpoint's ``alpha`` in Egbad), before any check."""
        with anomalib_safe_globals(extra=cls.checkpoint_safe_globals()):  # type: ignore[attr-defined]
            checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=kwargs.get("weights_only", True))
        check_written_by(cls.__name__, checkpoint)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)  # type: ignore[misc]

    def last_checkpoint(self) -> str | None:
        """The path of the last checkpoint this run wrote (named in divergence errors), if any."""
        trainer = self._trainer
        callback = trainer.checkpoint_callback if trainer is not None else None
        path = (callback.last_model_path or callback.best_model_path) if callback is not None else ""
        return path or None

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """anomalib's default metrics, pixel AUPR and AUPRO, and the CBiGAN paper's maximum balanced accuracy."""
        return default_evaluator()

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """Manual optimisation: no automatic clipping; no sanity validation (untrained scores)."""
        return {"gradient_clip_val": 0, "num_sanity_val_steps": 0}

    @property
    def learning_type(self) -> LearningType:
        """The models learn from normal images only."""
        return LearningType.ONE_CLASS
