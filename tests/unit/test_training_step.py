"""Training steps: each updates only its own networks; no NaN; divergence stops with a clear error; memory
format and precision."""

from __future__ import annotations

import math
from unittest import mock

import lightning
import pytest
import torch
from anomalib.data import ImageBatch

from anomalib_cbigan import Cbigan, Fcbigan, list_models, model_class
from anomalib_cbigan.models.gan_training import adam
from anomalib_cbigan.registry import takes_argument


class _Harness:
    """Runs Cbigan.training_step outside a Trainer (manual optimisation hooks stubbed)."""

    def __init__(self, model: Cbigan) -> None:
        self.model = model
        self.optimizers = model.configure_optimizers()
        model.optimizers = lambda: self.optimizers  # type: ignore[method-assign]
        model.manual_backward = lambda loss: loss.backward()  # type: ignore[method-assign]
        model.log = mock.Mock()  # type: ignore[method-assign]

    def step(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.training_step(ImageBatch(image=images), 0)["loss"]


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))


@pytest.fixture
def harness(whole_images: dict) -> _Harness:
    lightning.seed_everything(0, verbose=False)
    model = Cbigan(input_size=(64, 64), critic_steps=2, alpha=1e-3, visualizer=False, **whole_images)
    return _Harness(model)


def test_critic_step_leaves_encoder_and_generator_untouched(harness: _Harness) -> None:
    model = harness.model.model
    assert not harness.model.is_generator_step()
    encoder, generator, critic = _snapshot(model.encoder), _snapshot(model.generator), _snapshot(model.critic)
    harness.step(torch.rand(4, 3, 64, 64) * 2 - 1)
    assert _changed(critic, model.critic)
    assert not _changed(encoder, model.encoder)
    assert not _changed(generator, model.generator)


def test_generator_step_leaves_critic_untouched(harness: _Harness) -> None:
    model = harness.model.model
    harness.model.batches_seen.fill_(2)  # critic_steps=2: batches 0, 1 train D, batch 2 trains E and G
    assert harness.model.is_generator_step()
    encoder, generator, critic = _snapshot(model.encoder), _snapshot(model.generator), _snapshot(model.critic)
    harness.step(torch.rand(4, 3, 64, 64) * 2 - 1)
    assert _changed(encoder, model.encoder)
    assert _changed(generator, model.generator)
    assert not _changed(critic, model.critic)


def test_alternation_follows_critic_steps(harness: _Harness) -> None:
    pattern = []
    for _ in range(6):
        pattern.append(harness.model.is_generator_step())
        harness.step(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert pattern == [False, False, True, False, False, True]


def test_weight_average_is_updated_every_n_training_batches(whole_images: dict) -> None:
    """Official train.py: the average of E and G moves every 10 batches (critic and E/G batches alike)."""
    lightning.seed_everything(0, verbose=False)
    harness = _Harness(Cbigan(input_size=(64, 64), critic_steps=1, weight_average_decay=0.5, weight_average_every=3,
                              visualizer=False, **whole_images))  # fmt: skip
    updates = []
    for _ in range(7):
        harness.step(torch.rand(2, 3, 64, 64) * 2 - 1)
        updates.append(int(harness.model.model.average_updates))
    assert updates == [0, 0, 1, 1, 1, 2, 2]
    model = harness.model.model
    assert not torch.equal(model.average["generator"].project.weight, model.generator.project.weight)


def test_no_nan_after_a_few_steps(harness: _Harness) -> None:
    for _ in range(6):
        loss = harness.step(torch.rand(4, 3, 64, 64) * 2 - 1)
        assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in harness.model.parameters())


def test_divergence_stops_with_a_message_naming_the_loss(harness: _Harness) -> None:
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    images[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"critic_loss is nan at training batch 0.*lr=.*gp_weight="):
        harness.step(images)


def test_divergence_message_names_the_schedule_options_that_set_it(whole_images: dict) -> None:
    """A faster critic and a lazy penalty are the options a user changes back: the error names them and their values."""
    lightning.seed_everything(0, verbose=False)
    harness = _Harness(Cbigan(input_size=(64, 64), lr=1e-3, critic_steps=1, critic_lr_ratio=3.0, penalty_every=4,
                              visualizer=False, **whole_images))  # fmt: skip
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    images[0, 0, 0, 0] = float("nan")
    expected = (r"learning rate too high \(lr=0\.001; the critic's 0\.003, critic_lr_ratio=3\) or gradient penalty too "
                r"weak \(gp_weight=10\.0, on one critic step in 4: penalty_every=4\)")
    with pytest.raises(FloatingPointError, match=expected):
        harness.step(images)


def test_wrong_channel_count_in_training_is_a_clear_error(harness: _Harness) -> None:
    with pytest.raises(ValueError, match="3 channels, got 1"):
        harness.step(torch.rand(2, 1, 64, 64))


# FCBiGAN trains on patches: each mini-batch of patches gets a D update, then (critic_steps=1) an E/G update.


@pytest.fixture
def fcbigan_harness() -> _Harness:
    lightning.seed_everything(0, verbose=False)
    return _Harness(Fcbigan(patches_per_epoch=8, patch_batch_size=8, visualizer=False))


def test_fcbigan_critic_update_leaves_encoder_and_generator_untouched(fcbigan_harness: _Harness) -> None:
    model, lightning_model = fcbigan_harness.model.model, fcbigan_harness.model
    lightning_model.critic_steps = 2  # the first patch mini-batch then trains D only
    encoder, generator, critic = _snapshot(model.encoder), _snapshot(model.generator), _snapshot(model.critic)
    losses = lightning_model.train_on_patches(torch.rand(8, 3, 48, 48) * 2 - 1)
    assert set(losses) == {"critic_loss"}
    assert _changed(critic, model.critic)
    assert not _changed(encoder, model.encoder)
    assert not _changed(generator, model.generator)


def test_fcbigan_generator_update_trains_encoder_and_generator_not_critic(fcbigan_harness: _Harness) -> None:
    model, lightning_model = fcbigan_harness.model.model, fcbigan_harness.model
    lightning_model.train_on_patches(torch.rand(8, 3, 48, 48) * 2 - 1)  # D, then E/G
    critic = _snapshot(model.critic)
    encoder, generator = _snapshot(model.encoder), _snapshot(model.generator)
    # Freeze D's optimiser to isolate the E/G update's effect on D's weights.
    fcbigan_harness.optimizers[1].step = lambda *a, **k: None
    losses = lightning_model.train_on_patches(torch.rand(8, 3, 48, 48) * 2 - 1)
    assert set(losses) == {"critic_loss", "generator_loss", "reconstruction_l1"}
    assert _changed(encoder, model.encoder)
    assert _changed(generator, model.generator)  # the reconstruction penalty reaches G too (README: one E/G optimiser)
    assert not _changed(critic, model.critic)


def test_fcbigan_step_samples_patches_from_full_images_without_nan(fcbigan_harness: _Harness) -> None:
    for _ in range(3):
        loss = fcbigan_harness.step(torch.rand(2, 3, 72, 80) * 2 - 1)
        assert torch.isfinite(loss)
    assert int(fcbigan_harness.model.batches_seen) == 3
    assert int(fcbigan_harness.model.critic_updates) == 6  # 8 patches per image, 2 images, mini-batches of 8
    assert all(torch.isfinite(p).all() for p in fcbigan_harness.model.parameters())


def test_fcbigan_images_smaller_than_the_patch_are_a_clear_error(fcbigan_harness: _Harness) -> None:
    with pytest.raises(
        ValueError, match="trains on 48-px patches and needs training images at least as large, got 32x64"
    ):
        fcbigan_harness.step(torch.rand(2, 3, 32, 64))


def test_fcbigan_divergence_stops_with_a_message_naming_the_loss(fcbigan_harness: _Harness) -> None:
    images = torch.full((1, 3, 48, 48), float("nan"))
    with pytest.raises(FloatingPointError, match=r"critic_loss is nan.*lr="):
        fcbigan_harness.step(images)


# Memory format and precision: channels_last changes the layout, never the numbers; bf16 only the training steps.


def _train_two_batches(
    name: str, args: dict, *, sgd: bool = False, **speed: object
) -> tuple[list[float], list[torch.Tensor]]:
    if args.get("patches_per_epoch"):  # FCBiGAN: one optimiser step of 64 patches a batch (no trainer: per image)
        args = {**args, "patches_per_epoch": 32}
    lightning.seed_everything(0, verbose=False)
    model = model_class(name)(**args, **speed)
    harness = _Harness(model)
    if sgd:  # the models' own parameter groups, plain SGD: an update is exactly lr x gradient
        harness.optimizers[:] = [torch.optim.SGD(o.param_groups[0]["params"], lr=1e-2) for o in harness.optimizers]
    lightning.seed_everything(1, verbose=False)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    losses = [float(harness.step(images)) for _ in range(2)]  # CBiGAN/EGBAD: a D step, then an E/G step
    return losses, [p.detach().clone().contiguous() for p in model.model.parameters()]


@pytest.mark.numerics
@pytest.mark.parametrize("name", list_models())
def test_channels_last_trains_to_the_same_numbers(name: str, fast_model_args: dict) -> None:
    # The weights are compared after SGD updates (lr x gradient): Adam divides each gradient element by its own
    # magnitude, so where a gradient is ~0 it turns the NHWC kernels' float reassociation into up to a whole
    # step of difference (seen: 1e-4 in one of 131,072 weights), which says nothing about the layout.
    # One network call per pair (fused_steps=False): a joint call sums the real and generated pairs' opposite
    # contributions to a critic bias's gradient in one reduction, whose rounding then depends on the layout's
    # order (seen: 3e-6 after two steps). The fused steps are compared with these below, in the default layout.
    plain = {"fused_steps": False} if takes_argument(model_class(name), "fused_steps") else {}
    losses_nchw, weights_nchw = _train_two_batches(name, fast_model_args, sgd=True, channels_last=False, **plain)
    losses_nhwc, weights_nhwc = _train_two_batches(name, fast_model_args, sgd=True, channels_last=True, **plain)
    assert losses_nhwc == pytest.approx(losses_nchw, rel=1e-5, abs=1e-6)
    for before, after in zip(weights_nchw, weights_nhwc, strict=True):
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    adam_nchw, _ = _train_two_batches(name, fast_model_args, channels_last=False)  # the models' own optimisers
    adam_nhwc, _ = _train_two_batches(name, fast_model_args, channels_last=True)
    assert adam_nhwc == pytest.approx(adam_nchw, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("name", list_models())
def test_channels_last_puts_the_convolutions_in_nhwc(name: str, fast_model_args: dict) -> None:
    convolutions = [
        m.weight for m in model_class(name)(**fast_model_args, channels_last=True).model.modules()
        if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1 and m.weight.shape[1] > 1
    ]  # fmt: skip  (1x1 and depthwise kernels are contiguous either way)
    assert convolutions and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)


@pytest.mark.parametrize("name", list_models())
def test_bf16_mixed_precision_autocasts_the_training_steps_only(name: str, fast_model_args: dict) -> None:
    model = model_class(name)(**fast_model_args, training_precision="bf16-mixed")
    with model.training_autocast(torch.zeros(1)):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    losses, weights = _train_two_batches(name, fast_model_args, training_precision="bf16-mixed")
    assert all(math.isfinite(loss) for loss in losses)
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights)  # float32 master weights
    model.eval()
    with torch.no_grad():
        scores = model.model(torch.rand(2, 3, 64, 64) * 2 - 1).pred_score
    assert scores.dtype == torch.float32  # scoring is not autocast


@pytest.mark.parametrize(("precision", "match"), [("16-mixed", "gradient scaler.*use bf16-mixed"), ("64", "one of")])
def test_unsupported_training_precision_is_a_clear_error(precision: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Cbigan(input_size=(64, 64), training_precision=precision)


# fused_steps (each network called once on the pairs it scores together, fused Adam) changes the operator calls,
# not the numbers. The losses are compared over 20 steps of plain SGD, whose update is lr x gradient: with Adam,
# and CBiGAN's betas (0, 0.1) above all, an update is close to lr x sign(gradient), so a rounding-level change of
# a gradient near 0 becomes a whole step of difference (as between the NCHW and NHWC layouts above), and the
# trajectories part by 1e-3 within 20 steps whichever of the two changes is made. Fused Adam is compared alone.
FUSED_STEP_MODELS = [name for name in list_models() if takes_argument(model_class(name), "fused_steps")]


def _twenty_sgd_losses(name: str, *, fused_steps: bool, whole_images: dict) -> tuple[torch.Tensor, list]:
    lightning.seed_everything(0, verbose=False)
    if name == "Fcbigan":
        model = Fcbigan(critic_steps=2, fused_steps=fused_steps, visualizer=False)
        step, shape = model.train_on_patches, (4, 3, 48, 48)
    else:
        model = model_class(name)(input_size=(64, 64), critic_steps=2, fused_steps=fused_steps, visualizer=False,
                                  **whole_images)  # fmt: skip
        step, shape = model.train_on_batch, (4, 3, 64, 64)
    harness = _Harness(model)
    assert all(bool(optimizer.defaults["fused"]) == fused_steps for optimizer in harness.optimizers)
    harness.optimizers[:] = [torch.optim.SGD(o.param_groups[0]["params"], lr=1e-2) for o in harness.optimizers]
    generator = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(20):
        result = step(torch.rand(shape, generator=generator) * 2 - 1)
        losses.append(torch.stack(list(result.values())) if isinstance(result, dict) else result.detach()[None])
    return torch.cat(losses), _snapshot(model.model)


@pytest.mark.numerics
@pytest.mark.parametrize("name", FUSED_STEP_MODELS)
def test_fused_steps_give_the_same_losses_and_weights_for_twenty_steps(name: str, whole_images: dict) -> None:
    fused, fused_weights = _twenty_sgd_losses(name, fused_steps=True, whole_images=whole_images)
    plain, plain_weights = _twenty_sgd_losses(name, fused_steps=False, whole_images=whole_images)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    for a, b in zip(fused_weights, plain_weights, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.numerics
def test_fused_adam_makes_the_same_updates() -> None:
    """CBiGAN's Adam (Keras' epsilon, betas (0, 0.1) and (0, 0.9)), fused and per parameter, 20 steps."""
    torch.manual_seed(0)
    for betas in ((0.0, 0.1), (0.0, 0.9)):
        weights = [torch.randn(16, 8, 3, 3), torch.randn(16)]
        fused, plain = ([w.clone().requires_grad_(True) for w in weights] for _ in range(2))
        optimizers = [adam(params, fused=flag, lr=1e-3, betas=betas, eps=1e-7)
                      for params, flag in ((fused, True), (plain, False))]
        for _ in range(20):
            gradients = [torch.randn_like(w) for w in weights]
            for params, optimizer in zip((fused, plain), optimizers, strict=True):
                for param, gradient in zip(params, gradients, strict=True):
                    param.grad = gradient.clone()
                optimizer.step()
        for a, b in zip(fused, plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_fused_steps_call_each_network_fewer_times(whole_images: dict) -> None:
    calls = {}
    for fused_steps in (True, False):
        lightning.seed_everything(0, verbose=False)
        model = Cbigan(input_size=(64, 64), critic_steps=1, alpha=0.1, fused_steps=fused_steps, visualizer=False,
                       **whole_images)  # fmt: skip
        harness = _Harness(model)
        counts = {"critic": 0, "generator": 0}
        for network in counts:
            getattr(model.model, network).register_forward_hook(
                lambda *_, network=network: counts.__setitem__(network, counts[network] + 1)
            )
        for _ in range(2):  # one critic step, one E/G step
            harness.step(torch.rand(4, 3, 64, 64) * 2 - 1)
        calls[fused_steps] = counts
    # critic step: the real and generated pairs in one call (+ the penalty's); E/G step: both pairs in one call,
    # and G on z and E(x) in one call
    assert calls[False] == {"critic": 5, "generator": 3}
    assert calls[True] == {"critic": 3, "generator": 2}


# Schedules (issue 39): the critic's learning rate as a ratio of E's and G's, and the lazy gradient penalty.
SCHEDULE_MODELS = [name for name in list_models() if takes_argument(model_class(name), "critic_lr_ratio")]


@pytest.mark.parametrize("name", SCHEDULE_MODELS)
def test_critic_lr_ratio_sets_the_critics_learning_rate_alone(name: str, fast_model_args: dict) -> None:
    model = model_class(name)(**fast_model_args, lr=1e-3, critic_lr_ratio=4.0)
    generator_side, critic = model.configure_optimizers()
    assert generator_side.defaults["lr"] == 1e-3 and critic.defaults["lr"] == pytest.approx(4e-3)


@pytest.mark.parametrize("name", SCHEDULE_MODELS)
def test_neutral_schedule_options_give_the_defaults_losses_for_twenty_steps(name: str, fast_model_args: dict) -> None:
    def twenty_losses(**options: object) -> list[float]:
        lightning.seed_everything(0, verbose=False)
        args = {**fast_model_args, "critic_steps": 2}
        if args.get("patches_per_epoch"):  # FCBiGAN: one optimiser step of 32 patches a batch (no trainer)
            args["patches_per_epoch"] = 32
        harness = _Harness(model_class(name)(**args, **options))
        generator = torch.Generator().manual_seed(1)
        return [float(harness.step(torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1)) for _ in range(20)]

    neutral = {"critic_lr_ratio": 1.0} | ({"penalty_every": 1} if takes_argument(model_class(name), "penalty_every")
                                          else {})  # fmt: skip
    assert twenty_losses(**neutral) == twenty_losses()  # the models' own Adam, same kernels: equal to the bit


def test_penalty_every_k_penalises_every_kth_critic_step_weighted_by_k(whole_images: dict) -> None:
    lightning.seed_everything(0, verbose=False)
    model = Cbigan(input_size=(64, 64), critic_steps=2, gp_weight=10.0, penalty_every=3, visualizer=False,
                   **whole_images)  # fmt: skip
    images, prior = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 64)
    penalised = []
    for batch in range(12):  # D, D, E/G four times: critic steps 0-7
        model.batches_seen.fill_(batch)
        if model.is_generator_step():
            continue
        torch.manual_seed(batch)
        result = model._critic_loss(images, prior)  # noqa: SLF001
        penalised.append(isinstance(result, tuple))
        if penalised[-1]:
            loss, logs = result
            with torch.no_grad():
                real, fake = (images, model.model.encoder(images)), (model.model.generator(prior), prior)
            adversarial, _ = model.critic_loss(model.model.critic, real, fake, joint=True, penalty_scale=0)
            torch.testing.assert_close(loss, adversarial + 10.0 * 3 * logs["gradient_penalty"])
    assert penalised == [True, False, False, True, False, False, True, False]
