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


def test_tiled_scoring_takes_the_maximum_tile_score_and_stitches_the_maps() -> None:
    # The paper's texture protocol: every input_size tile scored, image score = max over tiles.
    torch.manual_seed(0)
    model = CbiganModel(input_size=(64, 64), tile_images=True).eval()
    images = torch.rand(2, 3, 128, 192) * 2 - 1
    with torch.no_grad():
        output = model(images)
        tiles = [images[:, :, r : r + 64, c : c + 64] for r in (0, 64) for c in (0, 64, 128)]
        per_tile = [model.score(tile) for tile in tiles]
    expected_score = torch.stack([tile.pred_score for tile in per_tile], dim=1).amax(dim=1)
    torch.testing.assert_close(output.pred_score, expected_score)
    assert output.anomaly_map.shape == (2, 1, 128, 192)
    torch.testing.assert_close(output.anomaly_map[..., 64:128, 128:192], per_tile[5].anomaly_map)


def test_he_normal_initialisation_matches_keras() -> None:
    """Every conv/dense weight: std sqrt(2 / fan_in), truncated at two std; biases zero; `init="torch"` differs."""
    torch.manual_seed(0)
    model = CbiganModel((64, 64))
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert layers
    for layer in layers:
        weight = layer.weight.detach()
        fan_in = weight[0].numel()
        std = (2 / fan_in) ** 0.5
        bound = 2 * std / 0.87962566103423978
        assert float(weight.abs().max()) <= bound + 1e-6
        if weight.numel() >= 2000:  # enough weights to estimate the spread
            assert float(weight.std()) == pytest.approx(std, rel=0.1)
        if layer.bias is not None:
            assert float(layer.bias.detach().abs().max()) == 0.0
    torch.manual_seed(0)
    default = CbiganModel((64, 64), init="torch")
    assert float(default.generator.project.weight.detach().std()) < 0.6 * float(model.generator.project.weight.detach().std())
    with pytest.raises(ValueError, match="init must be one of"):
        CbiganModel((64, 64), init="xavier")
