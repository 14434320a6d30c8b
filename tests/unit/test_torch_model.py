"""Shapes, input checks and initialisation of the CBiGAN networks."""

from __future__ import annotations

import pytest
import torch
from anomalib.data import InferenceBatch
from torch import nn

from anomalib_cbigan.models.cbigan.torch_model import CbiganModel, check_input_size


@pytest.mark.parametrize("size", [64, 128])
def test_network_shapes(size: int) -> None:
    model = CbiganModel(input_size=(size, size), latent_dim=64)
    images = torch.rand(2, 3, size, size) * 2 - 1
    latent = model.encoder(images)
    assert latent.shape == (2, 64)
    generated = model.generator(torch.randn(2, 64))
    assert generated.shape == (2, 3, size, size)
    assert generated.abs().max() <= 1  # tanh output
    critic = model.critic(images, latent)
    assert critic.score.shape == (2,)
    assert critic.features.shape == (2, 3 * size * size)  # first 3x3 conv of the image path: 1c = 3 maps


def test_official_plan_for_128_and_64() -> None:
    # 128 px objects: six generator blocks all up-sampling from 2x2; 64 px textures: the first does not.
    assert check_input_size((128, 128)) == ((2, 2), 6)
    assert check_input_size((64, 64)) == ((2, 2), 5)
    big = CbiganModel(input_size=(128, 128))
    small = CbiganModel(input_size=(64, 64))
    assert [b.upsample for b in big.generator.blocks] == [True] * 6
    assert [b.upsample for b in small.generator.blocks] == [False] + [True] * 5
    assert [b.conv1.out_channels for b in big.encoder.blocks] == [3, 6, 9, 12, 24, 48]


def test_larger_and_rectangular_inputs_reproduce_their_size() -> None:
    for size in [(256, 256), (64, 128)]:
        model = CbiganModel(input_size=size)
        assert model.generator(torch.randn(1, 64)).shape[-2:] == size


def test_eval_returns_inference_batch() -> None:
    model = CbiganModel(input_size=(64, 64)).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert isinstance(out, InferenceBatch)
    assert out.pred_score.shape == (3,)
    assert out.anomaly_map.shape == (3, 1, 64, 64)
    assert torch.isfinite(out.pred_score).all()


@pytest.mark.numerics
def test_score_is_the_papers_combination() -> None:
    model = CbiganModel(input_size=(64, 64), lambda_=0.25).eval()
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        latent, reconstruction = model.reconstruct(images)
        l_r = (images - reconstruction).abs().flatten(1).sum(1)
        f_real = model.critic(images, latent).features
        f_fake = model.critic(reconstruction, latent).features
        l_fd = (f_real - f_fake).abs().sum(1)
        expected = 0.75 * l_r + 0.25 * l_fd
        # the same networks on the same batch, summed by hand: per-image sums of thousands of positive terms,
        # whose float32 rounding stays well under 1e-5 relative on any kernel
        assert torch.allclose(model(images).pred_score, expected, rtol=1e-5)


def test_joint_feature_layer_depends_on_latent() -> None:
    critic = CbiganModel(input_size=(64, 64), feature_layer="joint").critic
    images = torch.rand(1, 3, 64, 64)
    a = critic(images, torch.zeros(1, 64)).features
    b = critic(images, torch.ones(1, 64)).features
    assert a.shape == (1, 48)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize(
    ("size", "match"),
    [((100, 100), "multiples of 32"), ((96, 96), "power of two"), ((16, 16), "multiples of 32")],
)
def test_unsupported_input_size_is_a_clear_error(size: tuple[int, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CbiganModel(input_size=size)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((1, 1, 64, 64), "3 channels, got 1"), ((1, 4, 64, 64), "got 4"), ((1, 3, 96, 96), "built for 64x64")],
)
def test_wrong_image_tensor_is_a_clear_error(shape: tuple[int, ...], match: str) -> None:
    model = CbiganModel(input_size=(64, 64)).eval()
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(shape))


def test_tiled_scoring_of_an_image_smaller_than_a_tile_says_what_to_do() -> None:
    # anomalib's export probes a model without --input_size with 32x32 images: the message must name the fix.
    model = CbiganModel(input_size=(64, 64), tile_images=True).eval()
    with pytest.raises(ValueError, match=r"Tile size \(64, 64\) exceeds image size \(32, 32\).*--input_size"):
        model(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize("init", ["glorot_uniform", "he_normal"])
def test_keras_initialisations(init: str) -> None:
    """Every conv/dense weight as Keras draws it (glorot_uniform: the official code's; he_normal: offered); biases
    zero; `init="torch"` differs; the default is the official one."""
    torch.manual_seed(0)
    model = CbiganModel((64, 64), init=init)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert layers
    for layer in layers:
        weight = layer.weight.detach()
        fan_in, fan_out = weight[0].numel(), weight[:, 0].numel()
        if init == "glorot_uniform":
            bound = (6 / (fan_in + fan_out)) ** 0.5
            std = bound / 3**0.5  # a uniform on [-b, b]
        else:
            std = (2 / fan_in) ** 0.5
            bound = 2 * std / 0.87962566103423978
        assert float(weight.abs().max()) <= bound + 1e-6
        if weight.numel() >= 2000:  # enough weights to estimate the spread
            assert float(weight.std()) == pytest.approx(std, rel=0.1)
        if layer.bias is not None:
            assert float(layer.bias.detach().abs().max()) == 0.0
    torch.manual_seed(0)
    default = CbiganModel((64, 64), init="torch")
    conv = lambda m: float(m.encoder.blocks[4].body[1].weight.detach().std())  # noqa: E731 (3x3, 24 -> 24 channels)
    assert conv(default) < 0.7 * conv(model)
    torch.manual_seed(0)
    if init == "glorot_uniform":
        torch.testing.assert_close(CbiganModel((64, 64)).generator.project.weight, model.generator.project.weight)
    with pytest.raises(ValueError, match="init must be one of"):
        CbiganModel((64, 64), init="xavier")


def test_weight_average_scores_in_eval_and_follows_tensorflows_moving_average() -> None:
    """First update copies the weights, later ones move by (1 - decay); eval scores with the average, training not."""
    torch.manual_seed(0)
    model = CbiganModel((64, 64), weight_average=True)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        first = model.encoder.head[3].bias.clone().fill_(1.0)
        model.encoder.head[3].bias.copy_(first)
        model.update_weight_average(0.9)  # the average starts at the current weights
        model.encoder.head[3].bias.fill_(3.0)
        model.update_weight_average(0.9)
    torch.testing.assert_close(model.average["encoder"].head[3].bias, torch.full_like(first, 0.9 * 1 + 0.1 * 3))
    assert all(not p.requires_grad for p in model.average.parameters())
    model.train()
    trained_latent = model(images)[0]
    torch.testing.assert_close(trained_latent, model.encoder(images))
    model.eval()
    with torch.no_grad():
        averaged = model.average["generator"](model.average["encoder"](images))
        torch.testing.assert_close(model.reconstruct(images)[1], averaged)
    with pytest.raises(RuntimeError, match="weight_average=True"):
        CbiganModel((64, 64)).update_weight_average(0.999)
