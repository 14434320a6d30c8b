"""Load the official TensorFlow CBiGAN's weights (Keras layout) into :class:`CbiganModel`.

The official ``model.py`` builds E, G and D from ``Conv2D`` and ``Dense`` layers; given each network's
weight arrays in the order those layers are created (``[kernel, bias]`` per layer, ``[kernel]`` for a
layer without bias), :func:`load_official_weights` copies them into the matching PyTorch modules:
convolution kernels from ``(kh, kw, in, out)`` to ``(out, in, kh, kw)``, dense kernels from
``(in, out)`` to ``(out, in)``, and the two dense layers that meet a flattened or reshaped feature map
re-ordered from Keras' channels-last (H, W, C) flattening to PyTorch's (C, H, W).
``benchmarks/reference_parity.py`` uses it to run both implementations from the same weights.

Example:
    >>> import numpy as np
    >>> conv_kernel_to_torch(np.zeros((3, 3, 4, 8), np.float32)).shape
    torch.Size([8, 4, 3, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .torch_model import NUM_POOLINGS, CbiganModel, ResidualBlock


def conv_kernel_to_torch(kernel: np.ndarray) -> torch.Tensor:
    """Keras ``Conv2D`` kernel ``(kh, kw, in, out)`` -> ``nn.Conv2d`` weight ``(out, in, kh, kw)``."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1))))


def channels_last_order(channels: int, height: int, width: int) -> np.ndarray:
    """Index ``i`` of a (C, H, W)-flattened map -> its index in the (H, W, C)-flattened one (Keras' ``Flatten``).

    Example:
        >>> channels_last_order(2, 1, 2).tolist()  # torch order c0w0, c0w1, c1w0, c1w1
        [0, 2, 1, 3]
    """
    return np.arange(height * width * channels).reshape(height, width, channels).transpose(2, 0, 1).reshape(-1)


def dense_kernel_to_torch(
    kernel: np.ndarray,
    input_order: np.ndarray | None = None,
    output_order: np.ndarray | None = None,
) -> torch.Tensor:
    """Keras ``Dense`` kernel ``(in, out)`` -> ``nn.Linear`` weight ``(out, in)``.

    ``input_order`` / ``output_order`` (from :func:`channels_last_order`) re-order the inputs of a layer
    that follows a ``Flatten`` and the outputs of a layer that feeds a ``Reshape``.
    """
    if input_order is not None:
        kernel = kernel[input_order, :]
    if output_order is not None:
        kernel = kernel[:, output_order]
    return torch.from_numpy(np.ascontiguousarray(kernel.T))


def _block_layers(block: ResidualBlock) -> list[nn.Module]:
    # Official d_block / g_block create: 1x1 shortcut, 3x3, 3x3, 1x1.
    return [block.shortcut, block.conv1, block.body[1], block.body[3]]


def official_layer_order(model: CbiganModel) -> dict[str, list[nn.Module]]:
    """Our ``Conv2d``/``Linear`` modules of E, G and D in the order the official ``model.py`` creates its layers."""
    critic = model.critic
    return {
        "encoder": [
            *(m for b in model.encoder.blocks for m in _block_layers(b)),
            model.encoder.head[1],
            model.encoder.head[3],
        ],
        "generator": [
            model.generator.project,
            *(m for b in model.generator.blocks for m in _block_layers(b)),
            model.generator.to_image[0],
        ],
        "critic": [
            *(m for m in critic.latent_path if isinstance(m, nn.Linear)),  # the latent path is created first
            *(m for b in critic.image_blocks for m in _block_layers(b)),
            critic.joint[0],
            critic.score,
        ],
    }


def _flat_order(model: CbiganModel) -> np.ndarray:
    """Order of the last image block's flattened output (E's head and D's joint layer take it)."""
    height, width = (side >> NUM_POOLINGS for side in model.input_size)
    return channels_last_order(model.encoder.blocks[-1].body[3].out_channels, height, width)


def load_official_weights(model: CbiganModel, weights: dict[str, Sequence[np.ndarray]]) -> None:
    """Copy official Keras weights into ``model`` (in place).

    Args:
        model (CbiganModel): Our networks, built with the official geometry (same ``input_size``,
            ``latent_dim``, ``channels``).
        weights (dict[str, Sequence[np.ndarray]]): ``"encoder"``, ``"generator"``, ``"critic"``: each
            network's arrays in the official layer-creation order (:func:`official_layer_order`).

    Raises:
        ValueError: if a network's arrays do not match ours in number or shape.
    """
    flat = _flat_order(model)
    generator = model.generator
    start = channels_last_order(generator.start_channels, *generator.start_size)
    special = {
        id(model.encoder.head[1]): {"input_order": flat},
        id(generator.project): {"output_order": start},
        # D's joint layer takes [flatten(image path), latent path]: only the image part is re-ordered.
        id(model.critic.joint[0]): {"input_order": np.concatenate([flat, np.arange(flat.size, flat.size + 512)])},
    }
    for name, modules in official_layer_order(model).items():
        arrays = list(weights[name])
        expected = sum(1 + (m.bias is not None) for m in modules)
        if len(arrays) != expected:
            msg = f"official {name} has {len(arrays)} weight arrays, ours expects {expected}: not the same network"
            raise ValueError(msg)
        with torch.no_grad():
            for module in modules:
                kernel = arrays.pop(0)
                if isinstance(module, nn.Conv2d):
                    converted = conv_kernel_to_torch(kernel)
                else:
                    converted = dense_kernel_to_torch(kernel, **special.get(id(module), {}))
                if converted.shape != module.weight.shape:
                    ours = tuple(module.weight.shape)
                    msg = f"official {name} kernel {kernel.shape} does not fit our {module} ({ours})"
                    raise ValueError(msg)
                module.weight.copy_(converted)
                if module.bias is not None:
                    module.bias.copy_(torch.from_numpy(arrays.pop(0)))
