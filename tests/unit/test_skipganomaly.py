"""Skip-GANomaly and SAGAN: the architecture choices of their READMEs, the losses, the score, the training step."""

from __future__ import annotations

from unittest import mock

import lightning
import pytest
import torch
from anomalib.data import ImageBatch
from timm.layers import SeparableConv2d
from timm.layers.cbam import CbamModule
from torch import nn

from anomalib_cbigan import Sagan, Skipganomaly
from anomalib_cbigan.models.skipganomaly.loss import DiscriminatorLoss, GeneratorLoss
from anomalib_cbigan.models.sagan.torch_model import SAGAN_BLOCKS
from anomalib_cbigan.models.skipganomaly.torch_model import SKIP_GANOMALY_BLOCKS, SkipganomalyModel


def _kinds(module: nn.Module) -> set[type]:
    return {type(layer) for layer in module.modules()}


def test_sagan_generator_has_attention_separable_convs_pooling_and_bilinear_upsampling() -> None:
    generator = SkipganomalyModel((64, 64), width=8, blocks=SAGAN_BLOCKS).generator
    kinds = _kinds(generator)
    assert {CbamModule, SeparableConv2d, nn.MaxPool2d, nn.Upsample} <= kinds
    assert nn.ConvTranspose2d not in kinds
    assert all(layer.stride == (1, 1) for layer in generator.modules() if isinstance(layer, nn.Conv2d))
    assert all(layer.mode == "bilinear" for layer in generator.modules() if isinstance(layer, nn.Upsample))
    # One CBAM after every down and every up block (the README's reading of the paper's figure).
    assert sum(isinstance(layer, CbamModule) for layer in generator.modules()) == len(generator.down) + len(
        generator.up
    )


def test_skipganomaly_generator_has_strided_and_transposed_convs_and_no_attention() -> None:
    kinds = _kinds(SkipganomalyModel((64, 64), width=8).generator)
    assert nn.ConvTranspose2d in kinds
    assert not {CbamModule, SeparableConv2d, nn.MaxPool2d, nn.Upsample} & kinds


@pytest.mark.parametrize("sagan", [False, True])
@pytest.mark.parametrize("side", [32, 64, 128])
def test_unet_goes_down_to_4x4_and_feeds_every_level_its_skip(sagan: bool, side: int) -> None:
    blocks = SAGAN_BLOCKS if sagan else SKIP_GANOMALY_BLOCKS
    generator = SkipganomalyModel((side, side), width=8, blocks=blocks).generator
    sizes = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[-1])) for block in generator.down]
    generator(torch.rand(1, 3, side, side))
    for hook in hooks:
        hook.remove()
    assert sizes[-1] == 4 and sizes == [side // 2**level for level in range(1, len(sizes) + 1)]
    # Every up block but the first takes its own output's width twice: the previous level and the skip.
    first_convs = [next(m for m in block.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | SeparableConv2d))
                   for block in generator.up[1:]]  # fmt: skip
    widths = [
        conv.conv_dw.in_channels if isinstance(conv, SeparableConv2d) else conv.in_channels for conv in first_convs
    ]
    previous = [block[-2 if not sagan else -3].num_features for block in generator.up[:-1]]
    assert widths == [2 * width for width in previous]


def test_a_changed_skip_changes_the_reconstruction_locally() -> None:
    """The skips carry local detail: a patch changed at the input changes the output mostly there."""
    torch.manual_seed(0)
    generator = SkipganomalyModel((64, 64), width=8).generator.eval()
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    changed = images.clone()
    changed[..., :16, :16] = -1
    difference = (generator(images) - generator(changed)).abs().mean(dim=1)[0]
    assert difference[:16, :16].mean() > 3 * difference[32:, 32:].mean()


def test_score_is_lambda_reconstruction_plus_latent() -> None:
    torch.manual_seed(0)
    model = SkipganomalyModel((32, 32), width=8, lambda_=0.9).eval()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        result = model(images)
        reconstruction = model.generator(images)
        latent = (model.critic(images)[1] - model.critic(reconstruction)[1]).pow(2).flatten(1).mean(dim=1)
        expected = 0.9 * (images - reconstruction).abs().flatten(1).mean(dim=1) + 0.1 * latent
    torch.testing.assert_close(result.pred_score, expected)
    assert result.anomaly_map.shape == (2, 1, 32, 32)


def test_losses_by_hand() -> None:
    zero = torch.tensor([0.0])
    features = torch.zeros(1, 4)
    images = torch.zeros(1, 3, 2, 2)
    # BCE(logit 0, real) = ln 2; contextual |0.5| = 0.5 weighted 40; latent 1^2 = 1.
    assert float(GeneratorLoss()(images, images + 0.5, zero, features, features + 1)) == pytest.approx(
        0.693147 + 20 + 1, abs=1e-5
    )
    assert float(GeneratorLoss(2, 0, 0)(images, images, zero, features, features)) == pytest.approx(2 * 0.693147)
    assert float(DiscriminatorLoss()(torch.tensor([20.0]), torch.tensor([-20.0]))) == pytest.approx(0, abs=1e-8)


@pytest.mark.parametrize("cls", [Skipganomaly, Sagan])
def test_a_training_step_updates_both_networks_in_order(cls: type) -> None:
    lightning.seed_everything(0, verbose=False)
    model = cls(input_size=(32, 32), width=8, visualizer=False)
    optimizers = model.configure_optimizers()
    model.optimizers = lambda: optimizers
    model.manual_backward = lambda loss: loss.backward()
    model.log = mock.Mock()
    generator = [p.detach().clone() for p in model.model.generator.parameters()]
    critic = [p.detach().clone() for p in model.model.critic.parameters()]
    with mock.patch.object(optimizers[1], "step", wraps=optimizers[1].step) as critic_step:
        loss = model.training_step(ImageBatch(image=torch.rand(4, 3, 32, 32) * 2 - 1), 0)["loss"]
    assert torch.isfinite(loss)
    assert critic_step.call_count == 1
    assert any(not torch.equal(a, b) for a, b in zip(generator, model.model.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(critic, model.model.critic.parameters(), strict=True))
    assert int(model.batches_seen) == 1


@pytest.mark.parametrize("size", [(48, 48), (64, 32)])
def test_input_sizes_the_unet_cannot_take_are_named(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="square with a power-of-two side"):
        Skipganomaly(input_size=size)
