"""PNG plots of a tidy results frame (see :func:`anomalib_cbigan_bench.report.tidy`).

* ``bar_<metric>.png``: one group of bars per category (and the mean), one bar per model, seed std as error bar;
* ``alpha_<metric>.png``: the metric against CBiGAN's alpha, one line per category (drawn when the
  results hold at least three alpha values of one model);
* ``curve_<dataset>.png``: validation (dashed) and test (solid) image AUROC along training, against training
  seconds and against updates (log axes), one colour per model variant, one line per seed, from the ``curves/``
  files of jobs with a ``curve`` section;
* ``roc_<category>.png``: ROC curves of every model on one category, from the per-image *raw* scores a
  :class:`~anomalib_cbigan_bench.Sweep` saves (the first seed of each model). Their AUROC can differ from
  the table's: anomalib computes its AUROC after the post-processor's min-max normalisation, which clamps
  test scores outside the validation range to 0 or 1 and so ties them.

Example:
    >>> import numpy as np
    >>> from anomalib_cbigan_bench.plots import roc_curve
    >>> fpr, tpr = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> float(np.trapezoid(tpr, fpr))
    0.75
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only; no display on factory PCs or CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from anomalib_cbigan.atomic_files import atomic_path

logger = logging.getLogger(__name__)

ALPHA = "model.init_args.alpha"


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1); ties kept together."""
    labels = np.asarray(labels, dtype=float)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    sorted_scores = np.asarray(scores, dtype=float)[order]
    true_positives = np.cumsum(labels[order])
    false_positives = np.cumsum(1 - labels[order])
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tpr = np.r_[0.0, true_positives[last_of_tie] / max(true_positives[-1], 1)]
    fpr = np.r_[0.0, false_positives[last_of_tie] / max(false_positives[-1], 1)]
    return fpr, tpr


def bar_chart(frame: pd.DataFrame, metric: str, path: Path) -> Path:
    """Grouped bars: categories (and their mean) × models, seed std as error bars."""
    models = list(dict.fromkeys(frame["model"]))
    stats = frame.groupby(["category", "model"], sort=False)[metric].agg(["mean", "std"]).unstack("model")
    means = stats["mean"].reindex(columns=models)
    stds = stats["std"].reindex(columns=models).fillna(0.0)
    if len(means) > 1:
        means.loc["mean"] = means.mean(axis=0, skipna=True)
        stds.loc["mean"] = 0.0
    width = 0.8 / max(len(models), 1)
    figure, axis = plt.subplots(figsize=(max(6.0, 1.2 * len(means) * max(len(models), 2) * 0.5), 4))
    positions = np.arange(len(means))
    for index, model in enumerate(models):
        axis.bar(
            positions + index * width,
            means[model].to_numpy(),
            width,
            yerr=stds[model].to_numpy(),
            label=model,
            capsize=2,
        )
    axis.set_xticks(positions + width * (len(models) - 1) / 2, list(means.index))
    axis.set_ylabel(metric)
    if metric.endswith(("AUROC", "F1Score", "BalancedAccuracy", "AUPR", "AUPRO")):
        axis.set_ylim(0, 1)
        axis.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    axis.legend(fontsize="small", ncol=2)
    axis.set_title(f"{metric} by category")
    return _save(figure, path)


def alpha_curve(frame: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """The metric against alpha (symlog axis: alpha = 0 is EGBAD's loss), one line per category."""
    if ALPHA not in frame or frame[ALPHA].nunique() < 3:
        return None
    swept = frame.dropna(subset=[ALPHA, metric])
    figure, axis = plt.subplots(figsize=(6, 4))
    for category, group in swept.groupby("category", sort=False):
        stats = group.groupby(ALPHA)[metric].agg(["mean", "std"]).fillna(0.0)
        axis.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=2, label=str(category))
    positive = swept[ALPHA][swept[ALPHA] > 0]
    axis.set_xscale("symlog", linthresh=float(positive.min()) if not positive.empty else 1e-5)
    axis.set_xlabel("alpha (0: BiGAN/EGBAD loss, 1: cycle-consistency only)")
    axis.set_ylabel(metric)
    axis.legend(fontsize="small")
    axis.set_title(f"{metric} against alpha")
    return _save(figure, path)


def length_curve(groups: list[pd.DataFrame], path: Path) -> Path | None:
    """Validation and test image AUROC against trained steps (log axis), one pair of lines per dataset and model."""
    needed = ("trained_steps", "val_image_AUROC_raw", "image_AUROC")
    groups = [group for group in groups if all(column in group for column in needed)]
    if not groups:
        return None
    figure, axis = plt.subplots(figsize=(6, 4))
    for group in groups:
        stats = group.groupby("model", sort=False)[list(needed)].mean().sort_values("trained_steps")
        name = f"{group['model_class'].iloc[0]}, {group['category'].iloc[0]}"
        line = axis.plot(stats["trained_steps"], stats["image_AUROC"], marker="o", label=f"{name}: test")[0]
        axis.plot(stats["trained_steps"], stats["val_image_AUROC_raw"], marker="s", linestyle="--",
                  color=line.get_color(), label=f"{name}: validation")  # fmt: skip
    axis.set_xscale("log")
    axis.set_xlabel("trained steps")
    axis.set_ylabel("image AUROC")
    axis.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    axis.legend(fontsize="small")
    axis.set_title("image AUROC against training length")
    return _save(figure, path)


def training_curves(frame: pd.DataFrame, curves_dir: Path, plot_dir: Path) -> list[Path]:
    """``curve_<dataset>.png`` for each dataset with curves (see the module docstring); the paths drawn."""
    if "job_id" not in frame or not Path(curves_dir).is_dir():
        return []
    drawn = []
    for dataset, jobs in frame.groupby("category", sort=False):
        curves = {index: Path(curves_dir) / f"{job_id}.csv" for index, job_id in jobs["job_id"].items()}
        curves = {index: path for index, path in curves.items() if path.is_file()}
        if not curves:
            continue
        figure, axes = plt.subplots(1, 2, figsize=(11, 4.2 + 0.2 * len(curves)), sharey=True)
        colours: dict[str, str] = {}
        for index, path in curves.items():
            points = pd.read_csv(path)
            model = jobs.at[index, "model"]
            for axis, unit in zip(axes, ("seconds", "updates"), strict=True):
                new = model not in colours
                line = axis.plot(points[unit], points["test_image_AUROC"], marker="o", markersize=3,
                                 color=colours.get(model), label=f"{model}: test" if new else None)[0]  # fmt: skip
                axis.plot(points[unit], points["val_image_AUROC"], linestyle="--", marker="s", markersize=3,
                          color=line.get_color(), label=f"{model}: validation" if new else None)  # fmt: skip
                if unit == "updates":
                    colours.setdefault(model, line.get_color())
        for axis, label in zip(axes, ("training seconds (scoring excluded)", "updates (E/G)"), strict=True):
            axis.set_xscale("log")
            axis.xaxis.set_major_formatter(mpl.ticker.ScalarFormatter())
            axis.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
            axis.set_xlabel(label)
            axis.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
        axes[0].set_ylabel("image AUROC (raw scores)")
        figure.suptitle(f"{dataset}: validation (dashed) and test (solid) along training, one line per seed")
        handles, labels = axes[1].get_legend_handles_labels()
        figure.legend(handles, labels, loc="lower center", ncol=2, fontsize="x-small", frameon=False)
        figure.tight_layout(rect=(0, 0.04 + 0.045 * len(labels) / 2, 1, 1))
        name = str(dataset).replace(" ", "_").replace("(", "").replace(")", "")
        drawn.append(_save(figure, Path(plot_dir) / f"curve_{name}.png", tight=False))
    return drawn


def roc_curves(frame: pd.DataFrame, category: str, scores_dir: Path, path: Path) -> Path | None:
    """ROC curves of each model's first seed on ``category``, from ``scores_dir/<job_id>.csv``."""
    if "job_id" not in frame or not scores_dir.is_dir():
        return None
    jobs = frame[frame["category"] == category].sort_values("seed").groupby("model", sort=False).head(1)
    figure, axis = plt.subplots(figsize=(5, 5))
    drawn = 0
    for _, job in jobs.iterrows():
        scores_file = scores_dir / f"{job['job_id']}.csv"
        if not scores_file.is_file():
            continue
        scores = pd.read_csv(scores_file).dropna(subset=["gt_label"])
        if scores["gt_label"].nunique() < 2:
            continue
        fpr, tpr = roc_curve(scores["gt_label"].to_numpy(), scores["pred_score"].to_numpy())
        axis.plot(fpr, tpr, label=f"{job['model']} (raw-score AUROC {np.trapezoid(tpr, fpr):.3f})")
        drawn += 1
    if not drawn:
        plt.close(figure)
        return None
    axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    axis.set_xlabel("false-positive rate")
    axis.set_ylabel("true-positive rate")
    axis.set_title(f"ROC of raw scores, {category} (seed {int(jobs['seed'].min())})")
    axis.legend(fontsize="small", loc="lower right")
    return _save(figure, path)


def draw_all(
    frame: pd.DataFrame,
    metrics: list[str],
    plot_dir: Path,
    scores_dir: Path,
    roc_category: str | None = None,
) -> list[Path]:
    """Every plot this module can draw for ``frame``; the paths of those drawn."""
    figures: list[Path | None] = []
    for metric in metrics:
        figures.append(bar_chart(frame, metric, plot_dir / f"bar_{metric}.png"))
        figures.append(alpha_curve(frame, metric, plot_dir / f"alpha_{metric}.png"))
    categories = list(dict.fromkeys(frame["category"]))
    category = roc_category or categories[0]
    if category not in categories:
        msg = f"No rows for ROC category {category!r}; the results have {categories}"
        raise ValueError(msg)
    figures.append(roc_curves(frame, category, scores_dir, plot_dir / f"roc_{category}.png"))
    return [figure for figure in figures if figure is not None]


def _save(figure: plt.Figure, path: Path, *, tight: bool = True) -> Path:
    if tight:
        figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110)
    plt.close(figure)
    return path
