"""Training throughput of every model on the real MVTec AD bottle images: anomalib's loader against the fast path.

For each model at its recipe's size, a real ``Engine.fit`` (data loading, pre-processing, Lightning's loop
included) runs ``--warmup`` batches, then ``--batches`` timed batches, once per path, all in one run:

* ``anomalib``: anomalib's ``MVTecAD`` loader (each PNG decoded, augmented and resized per epoch in
  ``num_workers`` = cores worker processes) and NCHW networks: the package as it was before the fast path;
* ``in-memory NCHW``: :class:`~anomalib_cbigan.data.InMemoryDataModule` (images decoded once, augmented on the
  device), NCHW networks: the data path's effect alone;
* ``in-memory channels_last``: NHWC networks, the steps as they were before ``fused_steps``;
* ``in-memory channels_last fused``: the models' defaults (``fused_steps=True`` where a model takes it);
* ``... bf16``: that with ``training_precision="bf16-mixed"``.

Each timed batch is split, by timestamps at the optimisers' steps, into data (from the end of the previous
batch to the start of this one: loading, transfer, augmentation), critic (everything up to and including
D's optimiser step), E/G (up to and including E/G's step) and other (logging, counters). FLOPs per batch
(``torch.utils.flop_counter``, forward and backward, the gradient penalty's double backward included) and
operator calls per batch (the in-memory augmentation's included) are counted during the warm-up batches.

Each model's protocol (CBiGAN/EGBAD: the paper's 1.2 million batches; FCBiGAN: the recipe's 100 epochs;
Skip-GANomaly/SAGAN: the papers' 15 epochs, of the bottle training images) is projected from these numbers:
on this CPU, batches x measured seconds per batch; on one GPU, a model, not a measurement (no GPU was used):
each batch costs the larger of its FLOPs at ``--gpu-tflops`` sustained and its operator calls at
``--launch-us`` each (eager PyTorch launches at least one kernel per operator; these narrow networks are
launch-bound on a GPU). The anomalib path is also bounded by its loader: its images/s measured alone here (``loader
images/s``), scaled from this machine's cores to ``--gpu-host-cores``.

Usage:
    python benchmarks/training_speed.py                       # all models, all paths (about 20 min, 2 cores)
    python benchmarks/training_speed.py --models Cbigan --batches 12
    python benchmarks/training_speed.py --models Cbigan --rounds 3  # each path 3 times, in turn; the medians
    # the embedded-texture sweeps' setting: 64 px, batch 16, no augmentation, anomalib's loader in-process
    python benchmarks/training_speed.py --root ~/.cache/anomalib_cbigan/textures --category brick --image-size 64 \
        --batch-size 16 --no-augmentation --workers 0 --paths anomalib "in-memory channels_last" --output ...

Every run also measures the cores' reference rates (a 1024^3 fp32 matrix product; a 3x3 convolution, forward and
backward, at the recipe's batch and size with 3 channels, the small networks' width, and with 64) and reports each
model's GFLOP/s as a percentage of each. ``--profile`` adds a torch.profiler pass per model and path: the share of
a batch spent inside aten operators (the rest: Python, Lightning, dispatch) and the operators that take the most.

The paths ending in ``fused`` train with ``fused_steps=True`` (the models' default: one network call per pair
scored together, fused Adam) where a model takes it; the others with ``fused_steps=False`` (the steps as they
were).

Writes ``benchmarks/results/training_speed{,_reference}.{csv,md}`` (``--profile``: ``_profile``, ``_operators``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch
from anomalib.data import MVTecAD
from anomalib.engine import Engine
from lightning import Callback, LightningModule, Trainer, seed_everything
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry
from torchvision.transforms.v2 import RandomRotation

from anomalib_cbigan.data import InMemoryDataModule
from anomalib_cbigan.registry import list_models, model_class, takes_argument
from anomalib_cbigan_bench.data_roots import data_root
from anomalib_cbigan_bench.timing import write_speed_tables


# (model arguments, batch size, train augmentations, the protocol's length: batches, or epochs of the training
# images) at the recipes' sizes: configs/recipes/ and benchmarks/sweeps/mvtec_*_gpu.yaml.
RECIPES: dict[str, tuple[dict[str, Any], int, Any, dict[str, int]]] = {
    "Cbigan": ({"input_size": (128, 128), "critic_steps": 5}, 32, RandomRotation((-45, 45)), {"batches": 1_200_000}),
    "Egbad": ({"input_size": (128, 128), "critic_steps": 5}, 32, RandomRotation((-45, 45)), {"batches": 1_200_000}),
    "Fcbigan": ({"input_size": None, "patches_per_epoch": 12000}, 8, None, {"epochs": 100}),
    "Skipganomaly": ({"input_size": (128, 128)}, 32, RandomRotation((-45, 45)), {"epochs": 15}),
    "Sagan": ({"input_size": (128, 128)}, 32, RandomRotation((-45, 45)), {"epochs": 15}),
}
PATHS = {  # name: (in-memory data, channels_last, training precision, fused_steps where the model takes it)
    "anomalib": (False, False, "32", False),
    "in-memory NCHW": (True, False, "32", False),
    "in-memory channels_last": (True, True, "32", False),
    "in-memory channels_last fused": (True, True, "32", True),
    "in-memory channels_last fused bf16": (True, True, "bf16-mixed", True),
}


class OperatorCounter(TorchDispatchMode):
    """Counts the aten operators dispatched (each at least one kernel launch on a GPU) and their FLOPs.

    The FLOPs come from torch's own formulas (``torch.utils.flop_counter``); its ``FlopCounterMode`` itself
    cannot be used: its module hooks break ``autograd.grad``, which the gradient penalty calls.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.calls += 1
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


class StepTimer(Callback):
    """Splits each training batch's wall time into data / critic / E/G / other; counts FLOPs while warming up."""

    def __init__(self, warmup: int, counted: int, timed: int) -> None:
        self.warmup, self.counted, self.timed = warmup, counted, timed
        self.rows: list[dict[str, float]] = []
        self.flops = self.operators = self.counted_images = 0
        self._batches = 0
        self._current: dict[str, float] = defaultdict(float)
        self._last_end = self._mark = 0.0
        self._counter: OperatorCounter | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Hook the optimisers: [0] trains E and G (G alone for Skip-GANomaly and SAGAN), [1] the critic."""
        del pl_module
        for index, optimizer in enumerate(trainer.optimizers):
            optimizer.register_step_post_hook(lambda *_, phase=("E/G", "critic")[index]: self._phase_end(phase))
        self._last_end = time.perf_counter()

    def counting_next(self) -> bool:
        """Whether the batch about to start is one whose operators and FLOPs are counted."""
        return self._batches < self.counted

    def _phase_end(self, phase: str) -> None:
        now = time.perf_counter()
        self._current[phase] += now - self._mark
        self._mark = now

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Data time ends here; start the counters during the counted warm-up batches."""
        del trainer, pl_module, batch, batch_idx
        self._current = defaultdict(float)
        if self.counting_next():
            self._counter = OperatorCounter()
            self._counter.__enter__()
        self._mark = time.perf_counter()
        self._current["data"] = self._mark - self._last_end

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:  # fmt: skip
        """Close the batch: the rest is 'other'; keep it if past the warm-up."""
        del pl_module, outputs, batch_idx
        now = time.perf_counter()
        self._current["other"] = now - self._mark
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops += self._counter.flops
            self.operators += self._counter.calls
            self.counted_images += len(batch.image)
            self._counter = None
        if self._batches >= self.warmup:
            self.rows.append({**self._current, "images": len(batch.image)})
        self._batches += 1
        # Stop by batches: trainer.max_steps counts optimiser steps, which are 2 (Skip-GANomaly) to dozens
        # (FCBiGAN's patch mini-batches) per batch.
        trainer.should_stop = self._batches >= self.warmup + self.timed
        self._last_end = time.perf_counter()


def reference_rates(batch: int, image_size: int, channels_last: bool, repeats: int = 20) -> dict[str, float]:
    """GFLOP/s these cores reach on plain fp32 work, measured beside the models: a 1024^3 matrix product, and a 3x3
    convolution forward + backward at a CBiGAN recipe's first-block shape (``batch`` images of ``image_size`` px,
    3 -> 3 channels, the width the small networks run at) and at 64 -> 64 channels (the width oneDNN is made for)."""
    from anomalib_cbigan_bench.timing import median_seconds

    torch.manual_seed(0)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    rates = {"matmul 1024": 2 * 1024**3 / median_seconds(lambda: a @ b, 3, repeats) / 1e9}
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for channels in (3, 64):
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(memory_format=fmt)
        x = torch.randn(batch, channels, image_size, image_size).to(memory_format=fmt).requires_grad_(True)

        def step(conv: torch.nn.Module = conv, x: torch.Tensor = x) -> None:
            conv(x).sum().backward()

        # forward, input gradient and weight gradient: three products of the same size
        flops = 3 * 2 * batch * channels * channels * 9 * image_size * image_size
        rates[f"conv3x3 {channels}ch"] = flops / median_seconds(step, 2, max(3, repeats // 4)) / 1e9
    return {name: round(rate, 1) for name, rate in rates.items()}


class ProfiledBatches(Callback):
    """torch.profiler over ``batches`` training batches after ``warmup``: where a batch's time goes, by operator."""

    def __init__(self, warmup: int, batches: int) -> None:
        self.warmup, self.batches = warmup, batches
        self._seen, self._wall = 0, 0.0
        self._profiler: torch.profiler.profile | None = None
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, float] = {}

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Start the profiler at the first profiled batch."""
        del trainer, pl_module, batch, batch_idx
        if self._seen == self.warmup:
            self._profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self._profiler.__enter__()
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:  # fmt: skip
        """Stop after the profiled batches and summarise: self time per operator, per batch."""
        del pl_module, outputs, batch, batch_idx
        self._seen += 1
        if self._profiler is not None and self._seen == self.warmup + self.batches:
            wall = time.perf_counter() - self._start
            self._profiler.__exit__(None, None, None)
            events = [event for event in self._profiler.key_averages() if event.key.startswith("aten::")]
            in_operators = sum(event.self_cpu_time_total for event in events) / 1e6
            self.summary = {"profiled s/batch": round(wall / self.batches, 4),
                            "in aten operators %": round(100 * in_operators / wall, 1),
                            "aten calls/batch": round(sum(event.count for event in events) / self.batches)}  # fmt: skip
            for event in sorted(events, key=lambda event: -event.self_cpu_time_total)[:20]:
                self.rows.append({"operator": event.key, "calls/batch": round(event.count / self.batches, 1),
                                  "self ms/batch": round(event.self_cpu_time_total / 1e3 / self.batches, 2),
                                  "% of batch": round(100 * event.self_cpu_time_total / 1e6 / wall, 1)})  # fmt: skip
            self._profiler = None
        trainer.should_stop = trainer.should_stop or self._seen >= self.warmup + self.batches


def datamodule(root: Path, category: str, batch_size: int, augmentations: Any, in_memory: bool,
               batches_per_epoch: int, workers: int) -> MVTecAD | InMemoryDataModule:  # fmt: skip
    """anomalib's loader with ``workers`` worker processes, or that loader wrapped in the in-memory path."""
    data = MVTecAD(root=root, category=category, train_batch_size=batch_size, eval_batch_size=batch_size,
                   num_workers=0 if in_memory else workers, train_augmentations=augmentations)  # fmt: skip
    return InMemoryDataModule(data, batches_per_epoch=batches_per_epoch) if in_memory else data


def loader_throughput(data: MVTecAD, batches: int = 6) -> float:
    """Images/s of anomalib's training loader alone (decode, augment, resize, collate), after its first batch."""
    loader = iter(data.train_dataloader())
    next(loader)  # worker start-up
    start, images = time.perf_counter(), 0
    for _, batch in zip(range(batches), loader, strict=False):
        images += len(batch.image)
    return images / (time.perf_counter() - start)


def batches_per_cycle(name: str, args: argparse.Namespace) -> int:
    """Batches of one critic/E-G cycle: ``critic_steps + 1`` for CBiGAN and EGBAD, else 1."""
    if name not in {"Cbigan", "Egbad"}:
        return 1
    return (args.critic_steps if args.critic_steps is not None else RECIPES[name][0]["critic_steps"]) + 1


def whole_cycles(batches: int, cycle: int) -> int:
    """``batches`` rounded down to whole D/E-G cycles, at least one cycle."""
    return max(cycle, batches // cycle * cycle)


def build(name: str, path: str, args: argparse.Namespace, batches: int) -> tuple[Any, Any, int]:
    """The model (its recipe's settings on ``path``) and the data for ``batches`` batches; ``(model, data, batch
    size)``."""
    model_args, batch_size, augmentations, _ = RECIPES[name]
    if args.image_size is not None and model_args.get("input_size") is not None:
        model_args = {**model_args, "input_size": (args.image_size, args.image_size)}
    if args.critic_steps is not None and "critic_steps" in model_args:
        model_args = {**model_args, "critic_steps": args.critic_steps}
    batch_size = args.batch_size or batch_size
    augmentations = None if args.no_augmentation else augmentations
    in_memory, channels_last, precision, fused_steps = PATHS[path]
    cls = model_class(name)
    if takes_argument(cls, "fused_steps"):
        model_args = {**model_args, "fused_steps": fused_steps}
    seed_everything(0, verbose=False)
    # The recipes' settings (Model.paper()), not the CPU defaults: the protocol whose length is projected.
    model = cls.paper(**model_args, channels_last=channels_last, training_precision=precision, visualizer=False)
    data = datamodule(args.root, args.category, batch_size, augmentations, in_memory, batches, args.workers)
    return model, data, batch_size


def profile(name: str, path: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One model, one path, under torch.profiler: the summary and the operators that take the most time."""
    cycle = batches_per_cycle(name, args)
    warmup = 2 * cycle
    model, data, _ = build(name, path, args, warmup + args.batches)
    profiled = ProfiledBatches(warmup, whole_cycles(args.batches, cycle))
    with TemporaryDirectory() as work_dir:
        Engine(max_steps=-1, max_epochs=-1, check_val_every_n_epoch=10**6, logger=False, callbacks=[profiled],
               default_root_dir=work_dir, enable_progress_bar=False).fit(model, datamodule=data)  # fmt: skip
    return {"model": name, "path": path, **profiled.summary}, [{"model": name, "path": path, **row}
                                                               for row in profiled.rows]  # fmt: skip


def measure(name: str, path: str, args: argparse.Namespace) -> dict[str, Any]:
    """One model, one path: Engine.fit over warm-up + timed batches; the row of the table."""
    protocol, cycle = RECIPES[name][3], batches_per_cycle(name, args)
    counted = cycle
    warmup = counted + 1
    timed = whole_cycles(args.batches, cycle)
    model, data, batch_size = build(name, path, args, warmup + timed)
    in_memory = PATHS[path][0]
    timer = StepTimer(warmup, counted, timed)
    if in_memory:  # count the augmentation's operators too: on a GPU they are kernel launches as well
        augment = data.on_after_batch_transfer

        def counted_augment(batch: Any, dataloader_idx: int) -> Any:  # noqa: ANN401
            if timer.counting_next():
                with OperatorCounter() as counter:
                    batch = augment(batch, dataloader_idx)
                timer.operators += counter.calls
                return batch
            return augment(batch, dataloader_idx)

        data.on_after_batch_transfer = counted_augment
    with TemporaryDirectory() as work_dir:
        engine = Engine(max_steps=-1, max_epochs=-1, check_val_every_n_epoch=10**6, logger=False,
                        callbacks=[timer], default_root_dir=work_dir, enable_progress_bar=False)  # fmt: skip
        fit_start = time.perf_counter()
        engine.fit(model, datamodule=data)
        fit_seconds = time.perf_counter() - fit_start
    totals = {key: sum(row.get(key, 0.0) for row in timer.rows) for key in ("data", "critic", "E/G", "other", "images")}
    batches = len(timer.rows)
    seconds = sum(totals[key] for key in ("data", "critic", "E/G", "other"))
    compute = totals["critic"] + totals["E/G"]
    flops = timer.flops / timer.counted_images * batch_size  # a full batch (an epoch may end in a short one)
    operators = timer.operators / counted
    gpu_batch = max(flops / (args.gpu_tflops * 1e12), operators * args.launch_us * 1e-6)
    loader_images_per_s = loader_throughput(data) if not in_memory else None
    if loader_images_per_s is not None:  # anomalib's loader: bounded by decoding on the GPU host's cores
        gpu_batch = max(gpu_batch, batch_size / (loader_images_per_s * args.gpu_host_cores / (os.cpu_count() or 1)))
    images = len(data.train_data) if hasattr(data, "train_data") else 0
    protocol_batches = protocol.get("batches") or protocol["epochs"] * math.ceil(images / batch_size)
    return {
        "model": name,
        "path": path,
        "batch": batch_size,
        "critic steps": getattr(model, "critic_steps", ""),  # a batch is one critic or one E/G step (CBiGAN, EGBAD)
        "images/s": round(totals["images"] / seconds, 1),
        "s/batch": round(seconds / batches, 3),
        "data %": round(100 * totals["data"] / seconds, 1),
        "data s": round(totals["data"] / batches, 3),
        "critic s": round(totals["critic"] / batches, 3),
        "E/G s": round(totals["E/G"] / batches, 3),
        "other s": round(totals["other"] / batches, 3),
        "GFLOP/batch": round(flops / 1e9, 1),
        "GFLOP/s": round(flops / batch_size * totals["images"] / max(compute, 1e-9) / 1e9, 1),
        "ops/batch": int(operators),
        "loader images/s": round(loader_images_per_s, 1) if loader_images_per_s is not None else "",
        "protocol batches": protocol_batches,
        "protocol, this CPU (h)": round(protocol_batches * seconds / batches / 3600, 1),
        "protocol, one GPU, projected (h)": round(protocol_batches * gpu_batch / 3600, 2),
        "timed batches": batches,
        "fit s": round(fit_seconds, 1),
    }


def median_row(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One path's row from its rounds: the median of every numeric figure, the first round's other fields.

    Example:
        >>> median_row([{"path": "a", "images/s": 10.0}, {"path": "a", "images/s": 14.0},
        ...             {"path": "a", "images/s": 11.0}])
        {'path': 'a', 'images/s': 11.0, 'rounds': 3}
    """
    row = dict(rounds[0])
    for key, value in row.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            row[key] = type(value)(statistics.median(r[key] for r in rounds))
    return row | {"rounds": len(rounds)}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Measure, print and write the tables; return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list_models())
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    parser.add_argument("--batches", type=int, default=12, help="timed batches (rounded to whole D/E-G cycles)")
    parser.add_argument("--root", type=Path, default=data_root("MVTEC_ROOT"), help="MVTec AD (default: $MVTEC_ROOT)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="anomalib loader's worker processes")
    parser.add_argument("--image-size", type=int, default=None, help="instead of the recipes' input size")
    parser.add_argument("--batch-size", type=int, default=None, help="instead of the recipes' batch size")
    parser.add_argument("--no-augmentation", action="store_true", help="without the recipes' rotation")
    parser.add_argument("--gpu-tflops", type=float, default=20.0, help="sustained GPU FLOP rate assumed (TFLOP/s)")
    parser.add_argument("--launch-us", type=float, default=10.0, help="GPU time assumed per operator call (us)")
    parser.add_argument("--gpu-host-cores", type=int, default=16, help="CPU cores of the GPU machine's loader")
    parser.add_argument("--critic-steps", type=int, default=None, help="instead of the recipes' (CBiGAN, EGBAD)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every path this many times, every other round in reverse order, and report "
                             "each figure's median: a short run on a shared machine moves from run to run")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="also profile each model and path (torch.profiler): OUTPUT_profile.{csv,md}")  # fmt: skip
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "training_speed")
    args = parser.parse_args(argv)
    # The cores' own rates, measured in the same run: what the models' GFLOP/s are a fraction of.
    size = args.image_size or 128
    peaks = reference_rates(args.batch_size or 32, size, channels_last=True)
    print(peaks, flush=True)
    rows, profiles, operators = [], [], []
    for name in args.models:
        measured: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for round_index in range(args.rounds):  # every other round in reverse: no path always runs first
            for path in args.paths if round_index % 2 == 0 else args.paths[::-1]:
                measured[path].append(measure(name, path, args))
                print(measured[path][-1], flush=True)
        for path in args.paths:
            rows.append(median_row(measured[path]))
            rows[-1] |= {f"% of {peak}": round(100 * rows[-1]["GFLOP/s"] / rate, 1) for peak, rate in peaks.items()}
            if args.profile:
                summary, top = profile(name, path, args)
                profiles.append(summary)
                operators += top
        baseline = next((r for r in rows if r["model"] == name and r["path"] == args.paths[0]), None)
        for row in rows:
            if row["model"] == name and baseline is not None:
                row[f"x {args.paths[0]}"] = round(row["images/s"] / baseline["images/s"], 2)
    write_speed_tables(rows, args.output)
    reference = [{"reference": peak, "GFLOP/s": rate, "shape": f"batch {args.batch_size or 32}, {size} px"
                  if peak.startswith("conv") else "1024x1024 fp32"} for peak, rate in peaks.items()]  # fmt: skip
    write_speed_tables(reference, args.output.parent / f"{args.output.name}_reference")
    if args.profile:
        write_speed_tables(profiles, args.output.parent / f"{args.output.name}_profile")
        write_speed_tables(operators, args.output.parent / f"{args.output.name}_operators")
    return rows


if __name__ == "__main__":
    main()
