"""A long training curve, fitted and projected: does CBiGAN's gap to the paper close with updates, and at what rate?

Reads a curve sweep's job (``curves/<job>.csv``: validation and test image AUROC at log-spaced points of its
training) and fits the test image AUROC's error, ``1 - AUROC``, as a power law of E/G updates,
``error = a * updates ** -b`` (a straight line on log-log axes), over the points from ``--fit-from`` training
seconds on (the first minute is a transient). From the fit, the updates at which the test AUROC would reach
``--target``, and what they would cost:

* on these cores: at the job's own updates per training second (its last point);
* on one GPU, **a projection, not a measurement**: ``training_speed.py``'s model of a GPU batch (the larger of its
  FLOPs at a sustained rate and its operator calls at a launch time each), read from its CSV (``--speed``, measured
  with the job's critic steps: a batch there is one critic or one E/G step, ``critic_steps + 1`` batches an update).

A second job (``--baseline``, optional) is drawn beside it: the schedule the curve is compared with; the paper's
figure for the category (Table III: the best test AUROC over its training, test-selected) is drawn as a line.

Run (after the sweep; the speed table from ``python benchmarks/training_speed.py --models Cbigan --paths
"in-memory channels_last fused" --image-size 64 --batch-size 16 --critic-steps 1 --batches 24 --rounds 3
--output benchmarks/results/training_speed_schedule``):
    python benchmarks/reference_curve.py --sweep benchmarks/results/sweeps/grid_schedules --reference 4062bef60a77 \\
        --baseline e7baf301d822 --speed benchmarks/results/training_speed_schedule.csv

Writes ``<sweep>/reference_curve.{csv,md}`` (the points and the fit) and ``<sweep>/plots/reference_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from anomalib_cbigan_bench.paper import published_tables

from anomalib_cbigan.reports import write_tables

SPEED_PATH = "in-memory channels_last fused"  # the models' defaults, the path the sweeps train on


class PowerLawFit(NamedTuple):
    """``1 - AUROC = a * updates ** -exponent``, fitted on log-log axes.

    Example:
        >>> fit = PowerLawFit.fit(np.array([100, 400, 1600]), np.array([0.6, 0.8, 0.9]))
        >>> round(fit.exponent, 3), round(fit.updates_for(0.95))
        (0.5, 6400)
    """

    a: float
    exponent: float
    r_squared: float
    points: int

    @classmethod
    def fit(cls, updates: np.ndarray, auroc: np.ndarray) -> PowerLawFit:
        """Least squares of ``log(1 - auroc)`` on ``log(updates)``; needs two points or more below AUROC 1."""
        keep = (auroc < 1) & (updates > 0)
        if keep.sum() < 2:  # noqa: PLR2004
            msg = f"a power law needs two points with AUROC below 1 and updates above 0; got {int(keep.sum())}"
            raise ValueError(msg)
        x, y = np.log(updates[keep].astype(float)), np.log1p(-auroc[keep].astype(float))
        slope, intercept = np.polyfit(x, y, 1)
        residual = y - (intercept + slope * x)
        spread = ((y - y.mean()) ** 2).sum()
        r_squared = 1 - (residual**2).sum() / spread if spread > 0 else float("nan")
        return cls(a=float(math.exp(intercept)), exponent=float(-slope), r_squared=float(r_squared),
                   points=int(keep.sum()))  # fmt: skip

    def auroc_at(self, updates: np.ndarray | float) -> np.ndarray | float:
        """The fitted AUROC after ``updates`` E/G updates."""
        return 1 - self.a * np.asarray(updates, dtype=float) ** -self.exponent

    def updates_for(self, target: float) -> float:
        """E/G updates at which the fitted AUROC reaches ``target``; infinite where the fit does not improve."""
        if self.exponent <= 0:
            return math.inf
        return (self.a / (1 - target)) ** (1 / self.exponent)


def read_job(sweep: Path, job: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A job's curve points and its row; an error naming what is missing."""
    curve, row = sweep / "curves" / f"{job}.csv", sweep / "rows" / f"{job}.json"
    for path in (curve, row):
        if not path.is_file():
            msg = f"{path} is missing: is {job} a finished job of the curve sweep in {sweep}?"
            raise FileNotFoundError(msg)
    return pd.read_csv(curve), json.loads(row.read_text())


def gpu_seconds_per_update(speed_csv: Path, critic_steps: int) -> float:
    """One E/G update's projected GPU seconds from ``training_speed.py``'s CBiGAN row measured with ``critic_steps``."""
    speed = pd.read_csv(speed_csv)
    rows = speed[(speed["model"] == "Cbigan") & (speed["path"] == SPEED_PATH)]
    if "critic steps" in speed:
        rows = rows[rows["critic steps"] == critic_steps]
    if rows.empty:
        msg = (f"{speed_csv} has no Cbigan row on {SPEED_PATH!r} measured with {critic_steps} critic step(s): run "
               f"training_speed.py with --critic-steps {critic_steps} (see this script's docstring)")  # fmt: skip
        raise ValueError(msg)
    row = rows.iloc[0]
    per_batch = row["protocol, one GPU, projected (h)"] * 3600 / row["protocol batches"]
    return float(per_batch * (critic_steps + 1))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Fit, project, write the tables and the plot; return the fit's rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", type=Path, required=True, help="a curve sweep's results folder")
    parser.add_argument("--reference", required=True, help="the long job's id")
    parser.add_argument("--baseline", default=None, help="a job drawn beside it (another schedule)")
    parser.add_argument("--speed", type=Path, default=None, help="training_speed.py's CSV for the GPU projection")
    parser.add_argument("--fit-from", type=float, default=240.0, help="training seconds of the first fitted point")
    parser.add_argument("--target", type=float, default=0.95, help="the test image AUROC projected")
    args = parser.parse_args(argv)

    points, row = read_job(args.sweep, args.reference)
    category = str(row.get("data.init_args.category", ""))
    paper = published_tables()["cbigan_paper"]["III"]["CBiGAN (ours)"].get(category)
    critic_steps = int(row.get("model.init_args.critic_steps", 5))
    fitted = points[points["seconds"] >= args.fit_from]
    fit = PowerLawFit.fit(fitted["updates"].to_numpy(), fitted["test_image_AUROC"].to_numpy())
    updates = fit.updates_for(args.target)
    last = points.iloc[-1]
    cpu_hours = updates / (last["updates"] / last["seconds"]) / 3600
    gpu_hours = updates * gpu_seconds_per_update(args.speed, critic_steps) / 3600 if args.speed else float("nan")
    summary = [{
        "job": args.reference,
        "seed": row.get("seed"),
        "critic steps": critic_steps,
        "trained (h)": round(last["seconds"] / 3600, 2),
        "E/G updates": int(last["updates"]),
        "updates/s here": round(last["updates"] / last["seconds"], 2),
        "test image AUROC, last": round(last["test_image_AUROC"], 3),
        "test image AUROC, chosen on validation": round(points.loc[points["val_image_AUROC"].idxmax(),
                                                                   "test_image_AUROC"], 3),  # fmt: skip
        "test-selected (best test point; never chosen with)": round(points["test_image_AUROC"].max(), 3),
        "the paper (Table III, test-selected)": paper if paper is not None else "—",
        "fitted points": fit.points,
        "exponent b": round(fit.exponent, 3),
        "error x per doubling": round(2**-fit.exponent, 3),
        "R^2": round(fit.r_squared, 3),
        f"updates to {args.target} (projection)": round(updates, -3) if math.isfinite(updates) else "never",
        f"hours to {args.target} here (projection)": round(cpu_hours, 1) if math.isfinite(cpu_hours) else "never",
        f"hours to {args.target} on one GPU (model, projection)": round(gpu_hours, 1)
        if math.isfinite(gpu_hours) else "—",
    }]  # fmt: skip
    write_tables(summary, args.sweep / "reference_curve")
    plot(points, fit, args, read_job(args.sweep, args.baseline) if args.baseline else None, paper, category)
    print(pd.DataFrame(summary).T.to_string(header=False))
    return summary


def plot(points: pd.DataFrame, fit: PowerLawFit, args: argparse.Namespace,
         baseline: tuple[pd.DataFrame, dict[str, Any]] | None, paper: float | None, category: str) -> Path:  # fmt: skip
    """AUROC against E/G updates: the long job (validation dashed, test solid), the baseline, the fit to the target."""
    figure, axis = plt.subplots(figsize=(8, 4.8))
    axis.plot(points["updates"], points["test_image_AUROC"], "o-", color="C0", label="test (reference schedule)")
    axis.plot(points["updates"], points["val_image_AUROC"], "s--", color="C0", alpha=0.6, label="validation")
    if baseline is not None:
        other, row = baseline
        name = f"{row.get('model.init_args.critic_steps', '?')} critic steps"
        axis.plot(other["updates"], other["test_image_AUROC"], "o-", color="C1", label=f"test ({name})")
        axis.plot(other["updates"], other["val_image_AUROC"], "s--", color="C1", alpha=0.6, label="validation")
    reach = fit.updates_for(args.target)
    end = min(reach, points["updates"].max() * 64) if math.isfinite(reach) else points["updates"].max() * 8
    span = np.geomspace(points[points["seconds"] >= args.fit_from]["updates"].min(), end, 50)
    axis.plot(span, fit.auroc_at(span), ":", color="k",
              label=f"fit: 1 - AUROC ∝ updates^-{fit.exponent:.2f} (projection beyond the last point)")  # fmt: skip
    axis.axhline(args.target, color="grey", linewidth=0.8)
    if paper is not None:
        axis.axhline(paper, color="C3", linewidth=0.8, linestyle="--",
                     label="the paper: best test AUROC over 1.2 M batches (test-selected)")  # fmt: skip
    axis.set_xscale("log")
    axis.set_xlabel("E/G updates")
    axis.set_ylabel("image AUROC (raw scores)")
    axis.set_title(f"CBiGAN on {category or 'its data'}: the reference curve and its fit")
    axis.legend(fontsize="x-small", loc="lower right")
    path = args.sweep / "plots" / "reference_curve.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


if __name__ == "__main__":
    main()
