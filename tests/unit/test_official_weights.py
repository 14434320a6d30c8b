"""Loading the official TensorFlow CBiGAN's Keras weights into ours: layouts and orders, on hand-made weights.

``benchmarks/reference_parity.py`` checks the whole thing against the official code itself (TensorFlow is not
installed in the test environment); these tests pin the conversion that it relies on.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anomalib_cbigan.models.cbigan.official_weights import (
    channels_last_order,
    conv_kernel_to_torch,
    dense_kernel_to_torch,
    load_official_weights,
    official_layer_order,
)
from anomalib_cbigan.models.cbigan.torch_model import CbiganModel

pytestmark = pytest.mark.numerics


def _hand_made(model: CbiganModel) -> dict[str, list[np.ndarray]]:
    """Keras-layout arrays (kernel, then bias where the layer has one) with distinct values, in creation order."""
    weights, value = {}, 0.0
    for name, modules in official_layer_order(model).items():
        arrays = []
        for module in modules:
            shape = tuple(module.weight.shape)
            keras_shape = (shape[2], shape[3], shape[1], shape[0]) if len(shape) == 4 else (shape[1], shape[0])
            count = int(np.prod(keras_shape))
            arrays.append((np.arange(count, dtype=np.float32).reshape(keras_shape) + value) / 1e4)
            value += count
            if module.bias is not None:
                arrays.append(np.full(shape[0], value / 1e4, np.float32))
        weights[name] = arrays
    return weights


def test_convolution_kernel_moves_to_out_in_height_width() -> None:
    kernel = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4)  # (kh, kw, in, out)
    weight = conv_kernel_to_torch(kernel)
    assert weight.shape == (4, 2, 3, 3)
    assert float(weight[3, 1, 2, 0]) == kernel[2, 0, 1, 3]


def test_channels_last_order_maps_torch_flattening_to_keras_flattening() -> None:
    features = torch.arange(5 * 2 * 3).reshape(5, 2, 3)  # (C, H, W)
    keras_flat = features.permute(1, 2, 0).reshape(-1).numpy()
    assert (keras_flat[channels_last_order(5, 2, 3)] == features.reshape(-1).numpy()).all()


def test_dense_after_flatten_computes_what_keras_computes() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((4 * 2 * 2, 3)).astype(np.float32)  # Keras Dense on a flattened (2, 2, 4) map
    features = torch.from_numpy(rng.standard_normal((1, 4, 2, 2)).astype(np.float32))
    keras_out = features.permute(0, 2, 3, 1).reshape(1, -1).numpy() @ kernel
    weight = dense_kernel_to_torch(kernel, input_order=channels_last_order(4, 2, 2))
    torch.testing.assert_close(features.reshape(1, -1) @ weight.T, torch.from_numpy(keras_out))


def test_hand_made_weights_land_where_keras_would_use_them() -> None:
    torch.manual_seed(0)
    model = CbiganModel((64, 64), channels=1)  # the image path ends in a 2x2 map, so flattening order matters
    weights = _hand_made(model)
    load_official_weights(model, weights)
    # torch's dense layers against numpy's products of the same float32 numbers: rounding of sums of hundreds of
    # terms of order 10, under 1e-4 on any kernel; a weight in the wrong place changes an output by its own size
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)  # noqa: E731
    # Convolutions: the first created conv of E's first block is its 1x1 shortcut.
    assert float(model.encoder.blocks[0].shortcut.weight.detach()[0, 2, 0, 0]) == weights["encoder"][0][0, 0, 2, 0]
    # G's first dense layer feeds Keras' Reshape to (2, 2, 16): channel c of pixel (h, w) is output (h*2+w)*16+c.
    latent = torch.randn(1, 64)
    keras_map = (latent.numpy() @ weights["generator"][0]).reshape(2, 2, 16)
    close(model.generator.project(latent).view(16, 2, 2), torch.from_numpy(keras_map).permute(2, 0, 1))
    # E's dense after Flatten and D's dense after the concatenation see the same features as Keras'.
    feature_map = torch.randn(1, 16, 2, 2)
    keras_flat = feature_map.permute(0, 2, 3, 1).reshape(1, -1).numpy()
    close(model.encoder.head[1](feature_map.flatten(1)), torch.from_numpy(keras_flat @ weights["encoder"][-3]))
    latent_features = torch.randn(1, 512)
    joint_kernel = weights["critic"][-3]  # [kernel, ..., joint kernel, score kernel, score bias]
    keras_joint = np.concatenate([keras_flat, latent_features.numpy()], axis=1) @ joint_kernel
    close(model.critic.joint[0](torch.cat([feature_map.flatten(1), latent_features], 1)), torch.from_numpy(keras_joint))
    assert float(model.critic.score.bias.detach()[0]) == weights["critic"][-1][0]
    # D's latent path is created before its image path.
    assert float(model.critic.latent_path[0].weight.detach()[1, 0]) == weights["critic"][0][0, 1]


def test_arrays_that_are_not_the_same_network_are_refused() -> None:
    model = CbiganModel((64, 64), channels=1)
    weights = _hand_made(model)
    with pytest.raises(ValueError, match="official encoder has 32 weight arrays, ours expects 33"):
        load_official_weights(model, {**weights, "encoder": weights["encoder"][:-1]})
    wider = _hand_made(CbiganModel((64, 64), channels=2))
    with pytest.raises(ValueError, match="does not fit our"):
        load_official_weights(model, wider)
