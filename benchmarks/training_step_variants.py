"""Other ways to run CBiGAN's training steps, timed side by side with the model's own in one run (issue 28).

Each variant runs the Lightning module's own critic loss (Wasserstein loss plus gradient penalty, whose gradient
with respect to the inputs is back-propagated again: a double backward) and E/G loss, then ``backward()``, on the
same weights and batch; no optimiser step, so every timed step starts from the same state. Variants:

* ``channels_last``: the model as it trains (NHWC, ``fused_steps``), the reference of every ratio;
* ``NCHW``: the same in NCHW;
* ``penalty conv: weight-gradient kernel``: the critic's convolutions as an autograd function whose double
  backward computes the weight gradients with the convolution's own weight-gradient kernel, where PyTorch's
  (``_convolution_double_backward``) runs them as a convolution of the batch with itself;
* ``penalty conv: unfold + matmul``: the same with those weight gradients as a product of unfolded patches;
* ``torch.compile``: E, G and the critic compiled (``nn.Module.compile``); ``first call s`` includes compiling,
  and a step that cannot run compiled has its error in its row.

``grad error vs float64``: how far the variant's float32 gradients are from the same step computed in float64
(the model in NCHW, the same weights, batch and penalty points), as the largest over parameters of
``||g - g64|| / ||g64||``: a variant computes the step's numbers to float32 rounding or is not a variant. A norm of
the whole tensor, not an element's difference: oneDNN picks its kernels, and with them the order of the sums, by
the processor's instruction set, and an element that nearly cancels can differ by most of its own size between
two correct kernels, where the tensor's norm moves by float32 rounding only.

Usage:
    python benchmarks/training_step_variants.py                      # 128 px batch 32 and 64 px batch 16
    python benchmarks/training_step_variants.py --shapes 64:16 --repeats 5 --output /tmp/variants

Writes ``benchmarks/results/training_step_variants.{csv,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from lightning import seed_everything
from torch import Tensor, nn
from torch.autograd import Function

from anomalib_cbigan.models.cbigan.lightning_model import Cbigan
from anomalib_cbigan_bench.timing import write_speed_tables

VARIANTS = (
    "channels_last",
    "NCHW",
    "penalty conv: weight-gradient kernel",
    "penalty conv: unfold + matmul",
    "torch.compile",
)


def _will_run(ctx: Any, index: int) -> bool:  # noqa: ANN401
    """Whether the running backward needs the gradient of the function's ``index``-th tensor input.

    ``needs_input_grad`` only says the input requires a gradient; the engine knows whether this backward uses it
    (the penalty's first backward needs the inputs' gradients, not the weights'). The engine cannot answer for a
    leaf during ``autograd.grad`` (then: needed), which is why the weights enter through a view.
    """
    if not ctx.needs_input_grad[index] or index >= len(ctx.next_functions):
        return False
    node = ctx.next_functions[index][0]
    if node is None:
        return False
    try:
        return torch._C._will_engine_execute_node(node)  # noqa: SLF001
    except RuntimeError:
        return True


def _input_gradient(grad_output: Tensor, weight: Tensor, input_shape: torch.Size, conv: nn.Conv2d) -> Tensor:
    placeholder = grad_output.new_empty(1).expand(input_shape)
    return torch.ops.aten.convolution_backward(
        grad_output, placeholder, weight, None, conv.stride, conv.padding, conv.dilation, False, [0], conv.groups,
        (True, False, False),
    )[0]  # fmt: skip


def _weight_gradient_kernel(inputs: Tensor, grad_output: Tensor, weight_shape: torch.Size, conv: nn.Conv2d) -> Tensor:
    placeholder = grad_output.new_empty(1).expand(weight_shape)
    return torch.ops.aten.convolution_backward(
        grad_output, inputs, placeholder, None, conv.stride, conv.padding, conv.dilation, False, [0], conv.groups,
        (False, True, False),
    )[1]  # fmt: skip


def _weight_gradient_unfold(inputs: Tensor, grad_output: Tensor, weight_shape: torch.Size, conv: nn.Conv2d) -> Tensor:
    patches = F.unfold(inputs, weight_shape[2:], conv.dilation, conv.padding, conv.stride)
    gradient = torch.einsum("nol,nkl->ok", grad_output.flatten(2), patches)
    return gradient.view(weight_shape)


def penalty_conv_functions(weight_gradient: Callable[..., Tensor]) -> type[Function]:
    """A conv2d autograd function, differentiable twice, whose weight gradients inside a double backward are
    ``weight_gradient(inputs, grad_output, weight_shape, conv)``."""

    class InputGradient(Function):
        @staticmethod
        def forward(  # noqa: ANN401
            ctx: Any,
            grad_output: Tensor,
            weight: Tensor,
            input_shape: torch.Size,
            conv: nn.Conv2d,
        ) -> Tensor:
            ctx.save_for_backward(grad_output, weight)
            ctx.conv = conv
            return _input_gradient(grad_output, weight, input_shape, conv)

        @staticmethod
        def backward(ctx: Any, upstream: Tensor) -> tuple[Any, ...]:  # noqa: ANN401
            grad_output, weight = ctx.saved_tensors
            d_grad_output = Conv.apply(upstream, weight, None, ctx.conv) if _will_run(ctx, 0) else None
            d_weight = None
            if _will_run(ctx, 1):
                d_weight = WeightGradient.apply(upstream, grad_output, weight.shape, ctx.conv)
            return d_grad_output, d_weight, None, None

    class WeightGradient(Function):
        @staticmethod
        def forward(  # noqa: ANN401
            ctx: Any,
            inputs: Tensor,
            grad_output: Tensor,
            weight_shape: torch.Size,
            conv: nn.Conv2d,
        ) -> Tensor:
            ctx.save_for_backward(inputs, grad_output)
            ctx.conv = conv
            return weight_gradient(inputs, grad_output, weight_shape, conv)

        @staticmethod
        def backward(ctx: Any, upstream: Tensor) -> tuple[Any, ...]:  # noqa: ANN401
            inputs, grad_output = ctx.saved_tensors
            d_inputs = None
            if _will_run(ctx, 0):
                d_inputs = InputGradient.apply(grad_output, upstream, inputs.shape, ctx.conv)
            d_grad_output = Conv.apply(inputs, upstream, None, ctx.conv) if _will_run(ctx, 1) else None
            return d_inputs, d_grad_output, None, None

    class Conv(Function):
        @staticmethod
        def forward(  # noqa: ANN401
            ctx: Any,
            inputs: Tensor,
            weight: Tensor,
            bias: Tensor | None,
            conv: nn.Conv2d,
        ) -> Tensor:
            ctx.save_for_backward(inputs, weight)
            ctx.conv, ctx.has_bias = conv, bias is not None
            return F.conv2d(inputs, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)

        @staticmethod
        def backward(ctx: Any, grad_output: Tensor) -> tuple[Any, ...]:  # noqa: ANN401
            inputs, weight = ctx.saved_tensors
            conv = ctx.conv
            needed = [_will_run(ctx, index) for index in range(3)]
            if not torch.is_grad_enabled():  # a plain backward: the native kernels, in one call
                bias_sizes = [weight.shape[0]] if ctx.has_bias else None
                mask = (needed[0], needed[1], needed[2] and ctx.has_bias)
                grads = torch.ops.aten.convolution_backward(
                    grad_output, inputs, weight, bias_sizes, conv.stride, conv.padding, conv.dilation, False, [0],
                    conv.groups, mask,
                )  # fmt: skip
                return *(grad if need else None for grad, need in zip(grads, mask, strict=True)), None
            d_inputs = InputGradient.apply(grad_output, weight, inputs.shape, conv) if needed[0] else None
            d_weight = WeightGradient.apply(inputs, grad_output, weight.shape, conv) if needed[1] else None
            d_bias = grad_output.sum((0, 2, 3)) if needed[2] and ctx.has_bias else None
            return d_inputs, d_weight, d_bias, None

    return Conv


def use_penalty_conv(module: nn.Module, weight_gradient: Callable[..., Tensor]) -> None:
    """Every ``nn.Conv2d`` of ``module`` runs through :func:`penalty_conv_functions`' function while training."""
    conv_function = penalty_conv_functions(weight_gradient)

    def forward(self: nn.Conv2d, inputs: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias.view_as(self.bias)
        return conv_function.apply(inputs, self.weight.view_as(self.weight), bias, self)

    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            layer.forward = types.MethodType(forward, layer)


def build(variant: str, image_size: int) -> Cbigan:
    """CBiGAN as it trains, in ``variant``; the same weights for every variant."""
    seed_everything(0, verbose=False)
    module = Cbigan(input_size=(image_size, image_size), channels_last=variant != "NCHW")
    module.model.train()
    if variant.startswith("penalty conv"):
        kernel = _weight_gradient_unfold if "unfold" in variant else _weight_gradient_kernel
        use_penalty_conv(module.model.critic, kernel)
    return module


def steps(module: Cbigan, images: Tensor, prior: Tensor) -> dict[str, Callable[[], None]]:
    """The critic step and the E/G step of ``module`` (loss and backward), each from zeroed gradients."""

    def critic() -> None:
        module.model.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # the penalty's interpolation
        module._critic_loss(images, prior)[0].backward()  # noqa: SLF001

    def encoder_generator() -> None:
        module.model.zero_grad(set_to_none=True)
        module._generator_loss(images, prior).backward()  # noqa: SLF001

    return {"critic": critic, "E/G": encoder_generator}


def gradients(module: Cbigan) -> list[Tensor]:
    return [p.grad.detach().clone() for p in module.model.parameters() if p.grad is not None]


def relative_error(ours: list[Tensor], reference: list[Tensor]) -> float:
    """The largest ``||a - b|| / max(||b||, s)`` over the parameters' gradients ``a`` and their references ``b``,
    ``s`` a hundredth of the largest reference norm ``max ||b||``.

    The floor ``s``: a tensor whose gradient is a small residual of larger terms (the critic's score bias in the
    E/G step is exactly 0, real and fake terms cancelling) carries the rounding of those terms, not of its own size,
    so its error is measured on the step's scale.
    """
    if len(ours) != len(reference):
        return float("inf")
    floor = 1e-2 * max(grad.norm().item() for grad in reference)
    pairs = zip(ours, reference, strict=True)
    return max(((a.double() - b).norm() / b.norm().clamp_min(floor)).item() for a, b in pairs)


def float64_gradients(module: Cbigan, raw_images: Tensor, prior: Tensor) -> dict[str, list[Tensor]]:
    """The critic and E/G steps' gradients of ``module`` (built as every variant: the same weights) in float64."""
    module = module.double()
    result = {}
    for step, run in steps(module, raw_images.double(), prior.double()).items():
        run()
        result[step] = gradients(module)
    return result


def measure(image_size: int, batch: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every variant's critic and E/G step at one shape. The timed calls go round the variants in turn, so that a
    drift of the machine's speed falls on all of them alike; ``first call s`` includes compiling where compiled
    (up to the error where it fails)."""
    raw_images = torch.rand(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference = build("NCHW", image_size)
    prior = torch.randn(batch, reference.model.latent_dim, generator=torch.Generator().manual_seed(1))
    reference_grads = float64_gradients(reference, raw_images, prior)
    rows, runs = [], []
    for variant in args.variants:
        module = build(variant, image_size)
        images = module.in_memory_format(raw_images)
        if variant == "torch.compile":
            for network in (module.model.encoder, module.model.generator, module.model.critic):
                network.compile()
        for step, run in steps(module, images, prior).items():
            row: dict[str, Any] = {"variant": variant, "step": step, "image_size": image_size, "batch": batch}
            rows.append(row)
            start = time.perf_counter()
            try:
                run()
            except Exception as error:  # noqa: BLE001 - a variant that cannot run is a result
                row["error"] = str(error).strip().splitlines()[0][:160]
            row["first_call_s"] = round(time.perf_counter() - start, 2)
            if "error" in row:
                continue
            row["grad_error_vs_float64"] = f"{relative_error(gradients(module), reference_grads[step]):.1e}"
            runs.append((row, run))
    times: dict[int, list[float]] = {id(row): [] for row, _ in runs}
    for repeat in range(1 + args.repeats):  # one untimed round first
        for row, run in runs:
            start = time.perf_counter()
            run()
            if repeat:
                times[id(row)].append(time.perf_counter() - start)
    reference_ms = {}
    for row, _ in runs:
        row["ms"] = round(statistics.median(times[id(row)]) * 1000, 1)
        reference_ms.setdefault(row["step"], row["ms"])  # channels_last's, timed first
        row["x_channels_last"] = round(reference_ms[row["step"]] / row["ms"], 3)
    for row in rows:
        print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["128:32", "64:16"], help="image_size:batch pairs")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per variant and step (median)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/training_step_variants"))
    args = parser.parse_args(argv)
    if args.variants[0] != VARIANTS[0]:
        args.variants = [VARIANTS[0], *(v for v in args.variants if v != VARIANTS[0])]
    rows = []
    for shape in args.shapes:
        image_size, batch = (int(part) for part in shape.split(":"))
        rows += measure(image_size, batch, args)
    write_speed_tables(rows, args.output)
    return rows


if __name__ == "__main__":
    main()
