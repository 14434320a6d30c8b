"""Any benchmark results CSV (ours or ``anomalib benchmark``'s) as Markdown/CSV tables and PNG plots.

Rows are grouped by model *variant*: the model class plus whichever of its arguments (or trainer
arguments) change between its rows, seeds aside, so an alpha sweep gives ``Cbigan (alpha=0.1)``,
``Cbigan (alpha=1.0)``, ...; untrained jobs are ``Cbigan (untrained)``. A category run with its brightness
standardised is a category of its own (``grid (brightness 0.45)``). Seeds of one variant and category
are averaged (mean ± std).

The report opens with what a reader needs first: datasets where the brightness shortcut
(:mod:`~anomalib_cbigan_bench.shortcut`) scores far from chance, and the table of settings chosen without test
labels: where a model has several variants, the one with the best mean validation AUROC
(``val_image_AUROC_raw``, measured on the datamodule's validation split: with ``val_split_mode: synthetic``,
held-out training images and synthetic anomalies), with each row's ``chosen_by``. Then a table per metric,
image AUROC per defect type (from the jobs' per-image scores), costs, where the sweep ran MVTec AD categories
the CBiGAN paper's Tables II and III and the FCBiGAN thesis's pixel AUPR beside ours
(:mod:`~anomalib_cbigan_bench.paper`), plots, and the reconstruction figures the jobs saved.

Example:
    >>> import pandas as pd
    >>> from anomalib_cbigan_bench.report import metric_table, tidy
    >>> frame = tidy(pd.DataFrame({
    ...     "model.class_path": ["Cbigan", "Cbigan", "anomalib.models.Ganomaly"],
    ...     "data.init_args.category": ["brick", "brick", "brick"],
    ...     "seed": [0, 1, 0],
    ...     "image_AUROC": [0.8, 0.9, 0.6],
    ... }))
    >>> metric_table(frame, "image_AUROC")[0]
    {'category': 'brick', 'Cbigan': '**0.850 ± 0.071**', 'Ganomaly': '0.600'}
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalib_cbigan.atomic_files import atomic_write_text
from anomalib_cbigan.metrics import auroc
from anomalib_cbigan.reports import markdown_table, write_tables

from . import plots
from .job import CURVES, FAILED, FIGURES, read_failure
from .paper import paper_sections, published_cells, published_tables, thesis_section

logger = logging.getLogger(__name__)

MODEL = "model.class_path"
CATEGORY_COLUMNS = ("data.init_args.category", "data.category")
# Arguments that name a variant when they change between one model's rows; nested class configs
# (pre-processors, evaluators) count by their last key.
VARIANT_PREFIXES = ("model.init_args.", "trainer.", "model.trainer.", "data.init_args.")
# Data arguments that make another dataset (the dataset label names them), not another variant of a model.
DATASET_COLUMNS = ("data.init_args.root", "data.init_args.category", "data.init_args.standardize_brightness")
UNTRAINED = "model.untrained"
CHOSEN_BY = "model.chosen_by"
BRIGHTNESS = "data.init_args.standardize_brightness"
SELECTION_METRIC = "val_image_AUROC_raw"
LENGTH_KEYS = ("max_time", "max_epochs", "max_steps")
SHORTCUT_MODEL = "MeanIntensity"
# The brightness shortcut's AUROC further than this from 0.5 flags a dataset (in either direction: a cue that
# ranks defects darker is as usable as one that ranks them brighter).
SHORTCUT_FLAG = 0.15
HEADLINE_METRICS = ("image_AUROC", "image_MaxBalancedAccuracy", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO")
HEADLINE_LABELS = {SELECTION_METRIC: "val AUROC", "image_AUROC": "image AUROC", "pixel_AUPRO": "AUPRO",
                   "image_MaxBalancedAccuracy": "max bal. acc.", "pixel_AUROC": "pixel AUROC", "pixel_AUPR": "pixel AUPR"}
SELECTION_NOTE = (
    "One row per dataset and model: where the sweep ran several variants of a model, the one with the best mean "
    "validation image AUROC (`val_image_AUROC_raw`, on the datamodule's validation split: with `val_split_mode: "
    "synthetic`, normal training images held out of the fit plus synthetic anomalies made from them; no test "
    "image). `chosen by`: how the entry's settings were fixed (its `chosen_by`). Test metrics of that variant, "
    "mean ± std over seeds."
)
LENGTH_NOTE = (
    "Models the sweep trained for several lengths: mean trained steps (Lightning's global step), validation AUROC "
    "(held-out training images and synthetic anomalies) and test metrics, mean ± std over seeds. Where validation "
    "and test rise together, more batches are what the model lacks; `plots/length_*.png` draws both."
)
CURVE_NOTE = (
    "Jobs scored at log-spaced points of their training (`curve` section): mean ± std over seeds of the test image "
    "AUROC (raw scores) of the last weights, of the weights at the best validation point (chosen without a test "
    "label: the figure to compare), and the best test AUROC over the points, the figure the official CBiGAN code "
    "reports (it keeps the checkpoint with the best test AUROC): **test-selected, shown beside, never used to "
    "choose**. Seconds are training seconds (scoring excluded); updates are E/G updates. `plots/curve_*.png` "
    "draws the curves."
)
CURVE_POINTS_NOTE = (
    "The test image AUROC (raw scores) at each point of training, mean ± std over seeds: what the same schedule "
    "gives after a shorter budget (training seconds, scoring excluded; the last point at the budget's end is the "
    "table above's \"last\"). The last column: how well validation ranks the test along one training (Spearman's "
    "rho over a job's points, every point included; mean ± std over seeds), what choosing a checkpoint rests on."
)
ALONG_TRAINING = "val ranks test over the points (Spearman)"
CURVE_COLUMNS = {
    "updates": "updates",
    "image_AUROC_raw": "last",
    "chosen_image_AUROC_raw": "chosen on validation",
    "chosen_val_image_AUROC_raw": "its val AUROC",
    "chosen_updates": "at updates",
    "test_selected_image_AUROC_raw": "best test over training (test-selected)",
    "chosen_pixel_AUROC": "pixel AUROC, chosen",
}
RANKING_NOTE = (
    "How well the validation split ranks what the test set would: per dataset, Spearman's rank correlation "
    "between `val_image_AUROC_raw` and the test image AUROC (raw scores) over the trained rows (every variant and "
    "seed; untrained rows and the shortcut check left out). Below 0.6 the validation split does not rank the "
    "candidates, and a choice made on it is close to a guess. Where the jobs also scored other kinds of synthetic "
    "anomalies on the same held-out images (a sweep's `validations`), each kind has its line."
)
RANKS_BELOW = 0.6
FAILURES_NOTE = (
    "Jobs of the sweep that failed (`failed/<job_id>.txt` beside the results: the job's configuration, then its "
    "error): they count in no table here, so a row's `seeds` leaves them out. The sweep's command retries them."
)
PROCESSOR = "processor"  # the CPU a job ran on; rows from before it was recorded have none
NO_PROCESSOR = "not recorded"
COSTS = {
    "trained_steps": "trained steps",  # Lightning's global_step: what a wall-clock budget bought
    "fit_duration": "train s",
    "test_duration": "test s",
    "inference_ms_per_image": "inference ms/image",
}


def tidy(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``model`` (variant label), ``category`` and ``seed`` columns to a results frame."""
    if MODEL not in results:
        msg = f"Not a benchmark results table: no {MODEL!r} column (columns: {list(results.columns)[:12]} ...)"
        raise ValueError(msg)
    frame = results.copy()
    frame["model_class"] = frame[MODEL].astype(str).str.rsplit(".", n=1).str[-1]
    category = next((column for column in CATEGORY_COLUMNS if column in frame), None)
    frame["category_name"] = frame[category].astype(str) if category else "all"
    frame["category"] = [_dataset_label(frame, index) for index in frame.index]
    if "seed" not in frame:
        frame["seed"] = 0
    flags = frame[UNTRAINED].astype(str).str.lower() if UNTRAINED in frame else pd.Series("", index=frame.index)
    frame["untrained"] = flags.isin(["true", "1", "1.0"])
    frame["model"] = [_variant_label(frame, index) for index in frame.index]
    return frame


def _dataset_label(frame: pd.DataFrame, index: Any) -> str:
    """The category, plus the brightness it was standardised to (a dataset of its own)."""
    name = frame.at[index, "category_name"]
    if BRIGHTNESS not in frame:
        return name
    value = frame.at[index, BRIGHTNESS]
    return name if pd.isna(value) else f"{name} (brightness {value:g})"


def _variant_label(frame: pd.DataFrame, index: Any) -> str:
    """The class, plus the arguments that differ between its rows of the same kind (trained or untrained) on the
    same dataset: an argument set per dataset (grid's crops, bottle's none) makes no variant."""
    cls = frame.at[index, "model_class"]
    untrained = bool(frame.at[index, "untrained"])
    same_kind = (frame["model_class"] == cls) & (frame["untrained"] == untrained)
    peers = frame[same_kind & (frame["category"] == frame.at[index, "category"])]
    prefixes = ("model.init_args.",) if untrained else VARIANT_PREFIXES  # an untrained job has no training arguments
    parts = []
    for column in frame.columns:
        if not column.startswith(prefixes) or column in DATASET_COLUMNS:
            continue
        if peers[column].astype(str).nunique(dropna=False) > 1:
            value = frame.at[index, column]
            if not (isinstance(value, float) and np.isnan(value)):
                parts.append(f"{column.rsplit('.', 1)[-1]}={_label_value(frame[column], value)}")
    if untrained:
        parts.append("untrained")
    return f"{cls} ({', '.join(parts)})" if parts else cls


def _label_value(column: pd.Series, value: Any) -> Any:
    """``value`` as its sweep wrote it: a column of whole numbers with blanks (rows of models without the
    argument) reads back as floats, so ``critic_steps`` 1 would print as ``1.0``."""
    if isinstance(value, float) and pd.api.types.is_float_dtype(column):
        numbers = column.dropna()
        if (numbers == numbers.round()).all():
            return int(value)
    return value


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The image/pixel metric columns (test, then validation) that hold numbers, in file order."""
    return [
        column
        for column in frame.columns
        if column.startswith(("image_", "pixel_", "val_image_", "val_pixel_"))
        and pd.api.types.is_numeric_dtype(frame[column])
        and frame[column].notna().any()
    ]


def shortcut_flags(frame: pd.DataFrame) -> list[str]:
    """A warning line for each dataset where the brightness shortcut's raw image AUROC is far from 0.5."""
    column = "image_AUROC_raw" if "image_AUROC_raw" in frame else "image_AUROC"
    if column not in frame:
        return []
    lines = []
    shortcut = frame[frame["model_class"] == SHORTCUT_MODEL]
    for (dataset, model), values in shortcut.groupby(["category", "model"], sort=False)[column]:
        score = values.mean()
        if not np.isnan(score) and abs(score - 0.5) > SHORTCUT_FLAG:
            lines.append(
                f"- **Shortcut on {dataset}**: {model}, which learns nothing about defects, scores image AUROC "
                f"{score:.3f}. A model can read well here by brightness alone; compare the models with the "
                "brightness standardised (`LocalMVTecAD(standardize_brightness=...)`)."
            )
    return lines


def selection_table(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Per dataset and model (trained and untrained apart), the variant with the best mean validation AUROC.

    A model with one variant is listed as it is; ``chosen by`` says how its settings were fixed (the entry's
    ``chosen_by``) and, where there were several variants, that this one won on validation. Variants run on
    different seeds (a winner's later seeds) are compared on the seeds they share, so that a seed's luck never
    decides; the chosen one's figures are then over all its seeds. The shortcut check's variants are checks, not
    candidates: each is listed.
    """
    if SELECTION_METRIC not in frame:  # a sweep from before validation scores: every variant, none chosen
        frame = frame.assign(**{SELECTION_METRIC: np.nan})
    rows = []
    candidates_of = np.where(frame["model_class"] == SHORTCUT_MODEL, frame["model"], frame["model_class"])
    for (dataset, _, _), group in frame.groupby(["category", candidates_of, "untrained"], sort=False):
        shared = _shared_seeds(group)
        on_shared = group["seed"].astype(str).isin(shared)
        validation = group[on_shared].groupby("model", sort=False)[SELECTION_METRIC].mean()
        candidates = len(validation)
        best = validation.idxmax() if validation.notna().any() else validation.index[0]
        chosen = group[group["model"] == best]
        notes = [str(note) for note in dict.fromkeys(chosen[CHOSEN_BY].dropna())] if CHOSEN_BY in chosen else []
        if candidates > 1 and validation.notna().any():
            on_seeds = "" if on_shared.all() else f" on the seeds they share ({_seed_list(shared)})"
            notes.append(f"best {SELECTION_METRIC} of {candidates} variants{on_seeds}")
        elif candidates > 1:
            notes.append(f"no validation scores: the first of {candidates} variants")
        row = {"dataset": dataset, "model": best, "seeds": str(chosen["seed"].nunique()),
               "chosen by": "; ".join(notes) or "—", SELECTION_METRIC: _cell(chosen[SELECTION_METRIC])}  # fmt: skip
        row |= {metric: _cell(chosen[metric]) if metric in chosen else "—" for metric in HEADLINE_METRICS}
        rows.append(row)
    datasets = list(dict.fromkeys(frame["category"]))
    return sorted(rows, key=lambda row: datasets.index(row["dataset"]))  # stable: models in sweep order


def _shared_seeds(group: pd.DataFrame) -> list[str]:
    """The seeds every variant of ``group`` ran on; all of its seeds where they share none."""
    seeds = [set(runs["seed"].astype(str)) for _, runs in group.groupby("model", sort=False)]
    shared = set.intersection(*seeds)
    return sorted(shared or set.union(*seeds))


def _seed_list(seeds: list[str]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(str(seed) for seed in seeds)


def headline_table(frame: pd.DataFrame, published: dict[tuple[str, str], str]) -> list[dict[str, str]]:
    """The selection table for a README: its test metrics, and what the paper or thesis published for the method.

    Args:
        frame: A tidy results frame (:func:`tidy`).
        published: ``{(model class, category): cell}`` (:func:`~anomalib_cbigan_bench.paper.published_cells`).
    """
    classes = dict(zip(frame["model"], frame["model_class"], strict=True))
    untrained = frame.groupby("model")["untrained"].any()
    names = dict(zip(frame["category"], frame["category_name"], strict=True))
    rows = []
    for row in selection_table(frame):
        seeds = "1 seed" if row["seeds"] == "1" else f"{row['seeds']} seeds"
        short = {"dataset": row["dataset"], "model": f"{row['model']}, {seeds}"}
        short |= {HEADLINE_LABELS[key]: row[key] for key in (SELECTION_METRIC, *HEADLINE_METRICS)}
        key = (classes[row["model"]], names[row["dataset"]])
        short["published (paper, thesis)"] = "—" if untrained[row["model"]] else published.get(key, "—")
        rows.append(short)
    return rows


def defect_table(frame: pd.DataFrame, scores_dir: Path) -> list[dict[str, str]]:
    """Image AUROC (raw scores) of each defect type against the good test images, per dataset and model.

    The defect type is the folder of each test image (MVTec AD's ``test/<defect type>/``), read from the
    per-image scores the jobs saved; mean ± std over seeds.
    """
    if "job_id" not in frame or not Path(scores_dir).is_dir():
        return []
    per_job: list[dict[str, Any]] = []
    for _, job in frame.iterrows():
        path = Path(scores_dir) / f"{job['job_id']}.csv"
        if not path.is_file():
            continue
        scores = pd.read_csv(path)
        if "image_path" not in scores:  # written before the scores named their images
            continue
        scores["defect"] = [Path(str(image)).parent.name for image in scores["image_path"]]
        good = scores[scores["gt_label"] == 0]
        if good.empty:
            continue
        for defect, bad in scores[scores["gt_label"] == 1].groupby("defect"):
            both = pd.concat([good, bad])
            per_job.append({"dataset": job["category"], "model": job["model"], "defect": defect,
                            "auroc": auroc(both["gt_label"].tolist(), both["pred_score"].tolist())})  # fmt: skip
    if not per_job:
        return []
    table = pd.DataFrame(per_job)
    defects = list(dict.fromkeys(table["defect"]))
    rows = []
    for (dataset, model), group in table.groupby(["dataset", "model"], sort=False):
        row = {"dataset": dataset, "model": model}
        row |= {defect: _cell(group.loc[group["defect"] == defect, "auroc"]) for defect in defects}
        rows.append(row)
    return rows


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "—"
    if len(values) == 1:
        return f"{values.iloc[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def metric_table(frame: pd.DataFrame, metric: str) -> list[dict[str, str]]:
    """Category × model rows (mean ± std over seeds), a ``mean`` row, the best of each row in bold.

    The mean row averages each model's per-category means; a model missing some categories is marked
    ``(k/n)`` with the number of categories it has.
    """
    models = list(dict.fromkeys(frame["model"]))
    categories = list(dict.fromkeys(frame["category"]))
    groups = frame.groupby(["category", "model"], sort=False)[metric]
    means = groups.mean().unstack("model").reindex(index=categories, columns=models)
    rows = []
    for category in categories:
        cells = {
            model: _cell(groups.get_group((category, model))) if (category, model) in groups.groups else "—"
            for model in models
        }
        rows.append({"category": category, **_bold_best(cells, means.loc[category])})
    if len(categories) > 1:
        overall = means.mean(axis=0, skipna=True)
        counts = means.notna().sum(axis=0)
        cells = {
            model: ("—" if np.isnan(overall[model]) else f"{overall[model]:.3f}")
            + ("" if counts[model] in (0, len(categories)) else f" ({counts[model]}/{len(categories)})")
            for model in models
        }
        rows.append({"category": "mean", **_bold_best(cells, overall)})
    return rows


def _bold_best(cells: dict[str, str], means: pd.Series) -> dict[str, str]:
    if means.notna().any():
        best = means.max()
        for model, mean in means.items():
            if not np.isnan(mean) and np.isclose(mean, best):
                cells[model] = f"**{cells[model]}**"
    return cells


def length_groups(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """The trained rows of each dataset and model class whose variants differ in training length (``max_time``,
    ``max_epochs`` or ``max_steps``, of the sweep's or the model entry's ``trainer``)."""
    columns = [f"{section}{key}" for section in ("trainer.", "model.trainer.") for key in LENGTH_KEYS]
    columns = [column for column in columns if column in frame]
    groups = []
    for _, group in frame[~frame["untrained"]].groupby(["category", "model_class"], sort=False):
        if group["model"].nunique() > 1 and any(group[column].astype(str).nunique() > 1 for column in columns):
            groups.append(group)
    return groups


def length_table(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Validation and test metrics against trained steps, for each model trained at several lengths."""
    rows = []
    for group in length_groups(frame):
        steps = group.groupby("model", sort=False)["trained_steps"].mean() if "trained_steps" in group else None
        order = steps.sort_values().index if steps is not None else list(dict.fromkeys(group["model"]))
        for model in order:
            runs = group[group["model"] == model]
            row = {"dataset": runs["category"].iloc[0], "model": model, "seeds": str(runs["seed"].nunique()),
                   "trained steps": "—" if steps is None else f"{steps[model]:.0f}"}  # fmt: skip
            for metric in (SELECTION_METRIC, *HEADLINE_METRICS[:4]):
                row[HEADLINE_LABELS[metric]] = _cell(runs[metric]) if metric in runs else "—"
            rows.append(row)
    return rows


def curve_table(frame: pd.DataFrame, curves_dir: Path) -> list[dict[str, str]]:
    """Per dataset and model variant with curves: last, chosen-on-validation and test-selected image AUROC."""
    if "curve_points" not in frame:
        return []
    with_curves = frame[frame["curve_points"].notna()].copy()
    if with_curves.empty:
        return []
    with_curves["updates"] = [_final_updates(Path(curves_dir) / f"{job_id}.csv") for job_id in with_curves["job_id"]]
    rows = []
    for (dataset, model), runs in with_curves.groupby(["category", "model"], sort=False):
        row = {"dataset": dataset, "model": model, "seeds": str(runs["seed"].nunique())}
        for column, title in CURVE_COLUMNS.items():
            counts = column.endswith("updates")  # whole numbers
            values = runs[column].dropna() if column in runs else pd.Series(dtype=float)
            row[title] = (f"{values.mean():.0f}" if not values.empty else "—") if counts else _cell(values)
        rows.append(row)
    return rows


def curve_points_table(frame: pd.DataFrame, curves_dir: Path) -> list[dict[str, str]]:
    """Per dataset and model variant with curves: the test image AUROC at each point of training before the last
    (mean ± std over seeds), named by its planned point in training seconds or E/G updates (the curve's unit),
    and how well the validation AUROC ranks the test AUROC over each job's points (Spearman)."""
    if "curve_points" not in frame:
        return []
    groups, names = [], {}
    for (dataset, model), runs in frame[frame["curve_points"].notna()].groupby(["category", "model"], sort=False):
        values: dict[tuple[str, int], list[float]] = {}
        rhos = []
        for _, run in runs.iterrows():
            path = Path(curves_dir) / f"{run['job_id']}.csv"
            if not path.is_file():
                continue
            points = pd.read_csv(path)
            rhos.append(spearman(points["val_image_AUROC"], points["test_image_AUROC"]))
            unit = _curve_setting(run, "unit")
            unit = "updates" if unit == "updates" else "seconds"
            first, factor = _curve_setting(run, "first"), _curve_setting(run, "factor")
            for _, point in points[~points["final"].astype(bool)].iterrows():
                key = (unit, _planned_point(float(point[unit]), first, factor))
                names[key] = _point_name(*key)
                values.setdefault(key, []).append(float(point["test_image_AUROC"]))
        if values:
            tail = {ALONG_TRAINING: _cell(pd.Series(rhos, dtype=float))}
            groups.append(({"dataset": dataset, "model": model, "seeds": str(runs["seed"].nunique())}, values, tail))
    order = sorted(names, key=lambda key: (key[0] != "seconds", key[1]))
    return [{**head, **{names[key]: _cell(pd.Series(values.get(key, []), dtype=float)) for key in order}, **tail}
            for head, values, tail in groups]  # fmt: skip


def _curve_setting(run: pd.Series, name: str) -> Any:
    """A job's ``curve`` setting, from the sweep's ``curve`` section or the model's."""
    value = run.get(f"curve.{name}")
    return run.get(f"model.curve.{name}") if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _planned_point(position: float, first: Any, factor: Any) -> int:
    """The planned point a curve point was scored for: the last of ``first * factor**i`` it had passed (a point is
    scored at the first batch past it, so a slow batch lands it at 31 s for a planned 30 s); its own position,
    rounded, without a plan.

    Example:
        >>> _planned_point(31.1, 30, 2), _planned_point(61.0, 30.0, 2.0), _planned_point(250.0, None, None)
        (30, 60, 250)
    """
    try:
        first, factor = float(first), float(factor)
    except (TypeError, ValueError):
        return round(position)
    if not (first > 0 and factor > 1) or position < first:
        return round(position)
    index = math.floor(math.log(position / first) / math.log(factor) + 1e-9)
    return round(first * factor**index)


def _point_name(unit: str, value: float) -> str:
    """A curve point's column: ``"30 s"``, ``"4 min"``, ``"500 updates"``.

    Example:
        >>> _point_name("seconds", 30), _point_name("seconds", 240), _point_name("updates", 500)
        ('30 s', '4 min', '500 updates')
    """
    if unit == "updates":
        return f"{value:.0f} updates"
    return f"{value:.0f} s" if value < 60 else f"{value / 60:g} min"  # noqa: PLR2004


def _final_updates(path: Path) -> float:
    return float(pd.read_csv(path)["updates"].iloc[-1]) if path.is_file() else float("nan")


def ranking_table(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Per dataset with three or more trained rows: Spearman's rho of validation against test image AUROC, for the
    sweep's validation split and for each extra synthetic kind its jobs were scored on (``validations``)."""
    test = "image_AUROC_raw" if "image_AUROC_raw" in frame else "image_AUROC"
    if SELECTION_METRIC not in frame or test not in frame:
        return []
    splits = {SELECTION_METRIC: "the sweep's"} | {
        column: column.removeprefix("val_").removesuffix("_image_AUROC_raw")
        for column in frame.columns
        if column.startswith("val_") and column.endswith("_image_AUROC_raw") and column != SELECTION_METRIC
    }
    trained = frame[~frame["untrained"] & (frame["model_class"] != SHORTCUT_MODEL)]
    rows = []
    for dataset, group in trained.groupby("category", sort=False):
        for column, split in splits.items():
            pairs = group[[column, test]].dropna()
            if len(pairs) < 3:  # noqa: PLR2004
                continue
            rho = spearman(pairs[column], pairs[test])
            verdict = "—" if np.isnan(rho) else ("ranks" if rho >= RANKS_BELOW else "**does not rank**")
            rows.append({"dataset": dataset, "validation split": split, "rows": str(len(pairs)),
                         "Spearman rho": _number(rho), "validation": verdict})  # fmt: skip
    return rows


def failure_table(results: pd.DataFrame, failed_dir: Path) -> list[dict[str, str]]:
    """One row per failed job in ``failed_dir`` that has no row in ``results``: its dataset, variant (labelled as
    the finished rows' are), seed and error."""
    finished = set(results["job_id"].astype(str)) if "job_id" in results else set()
    failed = []
    for path in sorted(failed_dir.glob("*.txt")) if failed_dir.is_dir() else []:
        failure = read_failure(path) if path.stem not in finished else None
        if failure is not None:
            failed.append({**failure[0], "job_id": path.stem, "error": failure[1]})
    if not failed:
        return []
    frame = tidy(pd.concat([results, pd.DataFrame(failed)], ignore_index=True)).iloc[len(results):]
    return [{"dataset": row["category"], "model": row["model"], "seed": str(row["seed"]), "job": row["job_id"],
             "error": str(row["error"]).replace("|", "/")} for _, row in frame.iterrows()]  # fmt: skip


def spearman(first: pd.Series, second: pd.Series) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN where either side is constant.

    Example:
        >>> spearman(pd.Series([0.1, 0.2, 0.3]), pd.Series([0.5, 0.4, 0.9]))
        0.5
    """
    first, second = first.rank().to_numpy(dtype=float), second.rank().to_numpy(dtype=float)
    if first.std() == 0 or second.std() == 0:
        return float("nan")
    return float(np.corrcoef(first, second)[0, 1])


def _number(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:+.2f}"


def cost_table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model variant: jobs, seeds, the mean training, test and per-image inference times, and, where the rows
    name it, the processors its jobs ran on (a fixed training time buys a different number of steps on each)."""
    rows = []
    for model, group in frame.groupby("model", sort=False):
        row: dict[str, Any] = {"model": model, "jobs": len(group), "seeds": group["seed"].nunique()}
        for column, title in COSTS.items():
            mean = group[column].mean() if column in group else float("nan")
            row[title] = "—" if np.isnan(mean) else f"{mean:.1f}"
        if PROCESSOR in frame:
            counts = group[PROCESSOR].fillna(NO_PROCESSOR).value_counts(sort=False)
            row["processor (jobs)"] = "; ".join(f"{name} ({count})" for name, count in counts.items())
        rows.append(row)
    return rows


def summary_rows(frame: pd.DataFrame, metrics: list[str]) -> list[dict[str, Any]]:
    """Long format for ``summary.csv``: one row per (metric, category, model) with mean, std and seeds."""
    rows = []
    for metric in metrics:
        for (category, model), values in frame.groupby(["category", "model"], sort=False)[metric]:
            values = values.dropna()
            if values.empty:
                continue
            std = values.std(ddof=1) if len(values) > 1 else float("nan")
            rows.append(
                {
                    "metric": metric,
                    "category": category,
                    "model": model,
                    "mean": values.mean(),
                    "std": std,
                    "seeds": len(values),
                }
            )
    return rows


def reconstruction_section(
    frame: pd.DataFrame, results_dir: Path, output_dir: Path, category: str | None = None
) -> list[str]:
    """Markdown lines showing each model's saved figure (its first seed) for one category (default: the first)."""
    if "job_id" not in frame:
        return []
    category = category or frame["category"].iloc[0]
    lines = []
    for model, jobs in frame[frame["category"] == category].groupby("model", sort=False):
        job = jobs.sort_values("seed").iloc[0]
        figure = results_dir / FIGURES / f"{job['job_id']}.png"
        if figure.is_file():
            relative = Path(os.path.relpath(figure, output_dir)).as_posix()
            lines += [f"**{model}**, {category}, seed {job['seed']}: input, reconstruction, maps, ground truth", "",
                      f"![{model}]({relative})", ""]  # fmt: skip
    return ["", f"## Reconstructions and anomaly maps ({category})", "", *lines] if lines else []


def write_report(
    results_csv: Path | str,
    output_dir: Path | str | None = None,
    *,
    roc_category: str | None = None,
    with_published: bool = True,
) -> Path:
    """Write ``report.md``, ``summary.csv``/``.md`` and the plots for a results CSV; return the report's path.

    Args:
        results_csv: A results file of :class:`~anomalib_cbigan_bench.Sweep` or of ``anomalib benchmark``.
        output_dir: Defaults to the CSV's folder.
        roc_category: The category whose ROC curves are drawn (needs the ``scores/`` folder that
            :class:`~anomalib_cbigan_bench.Sweep` writes beside its CSV). Defaults to the first.
        with_published: Set the CBiGAN paper's tables and the FCBiGAN thesis's pixel AUPR beside MVTec AD
            results (:func:`~anomalib_cbigan_bench.paper.published_tables`).
    """
    results_csv = Path(results_csv)
    if not results_csv.is_file():
        msg = f"No results file at {results_csv}: run a sweep first (python benchmarks/run_sweep.py --config ...)"
        raise FileNotFoundError(msg)
    results = pd.read_csv(results_csv)
    if results.empty:
        msg = f"{results_csv} has no rows: no job of the sweep has finished yet."
        raise ValueError(msg)
    frame = tidy(results)
    output_dir = Path(output_dir) if output_dir is not None else results_csv.parent
    metrics = metric_columns(frame)
    sections = [f"# Benchmark report: {results_csv}", ""]
    sections += [f"{len(frame)} jobs, models: {', '.join(dict.fromkeys(frame['model']))}.", ""]
    flags = shortcut_flags(frame)
    if flags:
        sections += ["## Shortcut check", "", *flags, ""]
    failures = failure_table(results, results_csv.parent / FAILED)
    if failures:
        sections += ["## Jobs that failed", "", FAILURES_NOTE, "", markdown_table(failures), ""]
    # A sweep from before validation scores chose its settings some other way: no section says it chose without labels.
    selected = selection_table(frame) if SELECTION_METRIC in frame else []
    if selected:
        sections += ["## Settings chosen without test labels", "", SELECTION_NOTE, "", markdown_table(selected), ""]
    for metric in metrics:
        sections += [f"## {metric}", "", markdown_table(metric_table(frame, metric)), ""]
    defects = defect_table(frame, results_csv.parent / "scores")
    if defects:
        sections += ["## image AUROC per defect type (raw scores, each defect type against the good test images)",
                     "", markdown_table(defects), ""]  # fmt: skip
    lengths = length_table(frame)
    if lengths:
        sections += ["## Training length (validation and test against trained steps)", "", LENGTH_NOTE, "",
                     markdown_table(lengths), ""]  # fmt: skip
    ranking = ranking_table(frame)
    if ranking:
        sections += ["## Does validation rank the test?", "", RANKING_NOTE, "", markdown_table(ranking), ""]
    curves = curve_table(frame, results_csv.parent / CURVES)
    if curves:
        sections += ["## Training curves (validation and test along training)", "", CURVE_NOTE, "",
                     markdown_table(curves), ""]  # fmt: skip
    points = curve_points_table(frame, results_csv.parent / CURVES) if curves else []
    if points:  # curves of a final point only have no points along training
        sections += [CURVE_POINTS_NOTE, "", markdown_table(points), ""]
    sections += ["## Cost (means over jobs)", "", markdown_table(cost_table(frame)), ""]
    if with_published:
        published = published_tables()
        sections += [*paper_sections(frame, published["cbigan_paper"]), ""]
        sections += [*thesis_section(frame, published["fcbigan_thesis"]), ""]
    figures = plots.draw_all(frame, metrics, output_dir / "plots", results_csv.parent / "scores", roc_category)
    length_figure = plots.length_curve(length_groups(frame), output_dir / "plots" / "length_image_AUROC.png")
    figures += [length_figure] if length_figure is not None else []
    figures += plots.training_curves(frame, results_csv.parent / CURVES, output_dir / "plots")
    sections += [f"![{figure.stem}](plots/{figure.name})" for figure in figures]
    sections += reconstruction_section(frame, results_csv.parent, output_dir, roc_category)
    if metrics:
        write_tables(summary_rows(frame, metrics), output_dir / "summary")
    report = output_dir / "report.md"
    atomic_write_text(report, "\n".join(sections) + "\n")
    logger.info("Wrote %s and %d plots", report, len(figures))
    return report
