"""The sweep report: tables (category × model, mean row, best in bold), cost table, plots, ROC."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomalib_cbigan_bench.plots import roc_curve
from anomalib_cbigan_bench.report import (
    cost_table,
    curve_points_table,
    failure_table,
    length_table,
    metric_table,
    selection_table,
    tidy,
    write_report,
)


def results_frame() -> pd.DataFrame:
    """An alpha sweep of Cbigan on two categories and two seeds, plus GANomaly on one category."""
    rows = []
    for category, offset in (("brick", 0.0), ("grass", 0.1)):
        for alpha in (0.0, 0.0001, 1.0):
            for seed in (0, 1):
                rows.append(
                    {
                        "job_id": f"c{category}{alpha}{seed}",
                        "model.class_path": "Cbigan",
                        "model.init_args.alpha": alpha,
                        "model.init_args.input_size": "[64, 64]",
                        "data.init_args.category": category,
                        "seed": seed,
                        "image_AUROC": 0.6 + offset + 0.1 * alpha + 0.01 * seed,
                        "trained_steps": 100 + seed,
                        "fit_duration": 10.0,
                        "test_duration": 2.0,
                        "inference_ms_per_image": 3.0,
                    }
                )
    rows.append(
        {
            "job_id": "g",
            "model.class_path": "anomalib.models.Ganomaly",
            "data.init_args.category": "brick",
            "seed": 0,
            "image_AUROC": 0.95,
            "fit_duration": 5.0,
            "test_duration": 1.0,
            "inference_ms_per_image": 1.0,
        }
    )
    return pd.DataFrame(rows)


def test_variants_are_named_by_the_arguments_that_change() -> None:
    frame = tidy(results_frame())
    assert set(frame["model"]) == {"Cbigan (alpha=0.0)", "Cbigan (alpha=0.0001)", "Cbigan (alpha=1.0)", "Ganomaly"}


def test_a_model_entrys_data_arguments_name_its_variants_but_the_dataset_does_not() -> None:
    frame = tidy(pd.DataFrame({
        "model.class_path": ["Draem"] * 4,
        "data.init_args.train_batch_size": [32, 8, 32, 8],
        "data.init_args.category": ["grid"] * 4,
        "data.init_args.standardize_brightness": [None, None, 0.45, 0.45],
    }))  # fmt: skip
    assert list(frame["model"]) == ["Draem (train_batch_size=32)", "Draem (train_batch_size=8)"] * 2
    assert list(frame["category"]) == ["grid", "grid", "grid (brightness 0.45)", "grid (brightness 0.45)"]


def test_arguments_set_per_dataset_name_no_variant() -> None:
    frame = tidy(pd.DataFrame({
        "model.class_path": ["Cbigan"] * 4,
        "model.init_args.fused_steps": [False, True, False, True],
        "model.init_args.tile_images": [False, False, True, True],  # grid's entries tile, bottle's do not
        "data.init_args.category": ["bottle", "bottle", "grid", "grid"],
    }))  # fmt: skip
    assert list(frame["model"]) == ["Cbigan (fused_steps=False)", "Cbigan (fused_steps=True)"] * 2


def test_length_table_orders_a_models_lengths_by_trained_steps_and_skips_models_of_one_length() -> None:
    frame = tidy(pd.DataFrame({
        "model.class_path": ["Cbigan", "Cbigan", "Cbigan", "Ganomaly"],
        "model.trainer.max_time": ["00:00:08:00", "00:00:01:00", "00:00:01:00", None],
        "trained_steps": [4000, 500, 520, 90],
        "val_image_AUROC_raw": [0.8, 0.6, 0.62, 0.5],
        "image_AUROC": [0.7, 0.6, 0.64, 0.5],
        "data.init_args.category": ["grid"] * 4,
        "seed": [0, 0, 1, 0],
    }))  # fmt: skip
    rows = length_table(frame)
    assert [(row["model"], row["trained steps"], row["seeds"]) for row in rows] == [
        ("Cbigan (max_time=00:00:01:00)", "510", "2"), ("Cbigan (max_time=00:00:08:00)", "4000", "1")]
    assert rows[0]["val AUROC"] == "0.610 ± 0.014" and rows[1]["image AUROC"] == "0.700"
    assert length_table(frame[frame["model_class"] == "Ganomaly"]) == []


def test_metric_table_means_seeds_adds_a_mean_row_and_bolds_the_best() -> None:
    table = metric_table(tidy(results_frame()), "image_AUROC")
    assert [row["category"] for row in table] == ["brick", "grass", "mean"]
    brick, grass, mean = table
    assert brick["Cbigan (alpha=0.0)"] == "0.605 ± 0.007"
    assert brick["Ganomaly"] == "**0.950**"  # the best of the row
    assert grass["Ganomaly"] == "—"  # not run on grass
    assert grass["Cbigan (alpha=1.0)"] == "**0.805 ± 0.007**"
    # The mean row: each model's mean over its categories; GANomaly has 1 of 2 and says so.
    assert mean["Ganomaly"] == "**0.950 (1/2)**"
    assert mean["Cbigan (alpha=1.0)"] == "0.755"


def test_variant_labels_print_whole_number_arguments_as_written_and_fractions_as_they_are() -> None:
    results = results_frame()
    results["model.init_args.critic_steps"] = [1 if alpha == 1.0 else 5 for alpha in results["model.init_args.alpha"]]
    results.loc[results["job_id"] == "g", "model.init_args.critic_steps"] = None  # GANomaly has none: floats
    frame = tidy(results.astype({"model.init_args.critic_steps": float}))
    assert "Cbigan (alpha=1.0, critic_steps=1)" in set(frame["model"])  # alpha has 0.0001 among its values
    assert "Cbigan (alpha=0.0001, critic_steps=5)" in set(frame["model"])


def test_cost_table_has_trained_steps_train_test_and_inference_time_per_model() -> None:
    rows = {row["model"]: row for row in cost_table(tidy(results_frame()))}
    assert rows["Ganomaly"]["train s"] == "5.0" and rows["Ganomaly"]["inference ms/image"] == "1.0"
    assert rows["Cbigan (alpha=1.0)"]["jobs"] == 4 and rows["Cbigan (alpha=1.0)"]["seeds"] == 2
    assert rows["Cbigan (alpha=1.0)"]["trained steps"] == "100.5"  # the mean of the seeds' 100 and 101
    assert rows["Ganomaly"]["trained steps"] == "—"  # a row without the column
    assert "processor (jobs)" not in rows["Ganomaly"]  # no row names its processor: no column


def test_cost_table_names_each_variants_processors_and_the_rows_that_recorded_none() -> None:
    results = results_frame()
    results["processor"] = None
    results.loc[results["seed"] == 1, "processor"] = "CPU A"
    results.loc[results["job_id"] == "g", "processor"] = "CPU B"
    rows = {row["model"]: row for row in cost_table(tidy(results))}
    assert rows["Cbigan (alpha=1.0)"]["processor (jobs)"] == "not recorded (2); CPU A (2)"
    assert rows["Ganomaly"]["processor (jobs)"] == "CPU B (1)"


def test_roc_curve_matches_the_rank_statistic() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(size=200) + labels, 1)  # rounded: many ties
    fpr, tpr = roc_curve(labels, scores)
    positives, negatives = scores[labels == 1], scores[labels == 0]
    pairs = (positives[:, None] > negatives[None, :]).mean() + 0.5 * (positives[:, None] == negatives[None, :]).mean()
    assert np.trapezoid(tpr, fpr) == pytest.approx(pairs)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)


def test_write_report_writes_tables_and_every_plot(tmp_path: Path) -> None:
    results = results_frame()
    results.to_csv(tmp_path / "results.csv", index=False)
    scores = tmp_path / "scores"
    scores.mkdir()
    for job in results["job_id"]:
        pd.DataFrame({"gt_label": [0, 0, 1, 1], "pred_score": [0.1, 0.4, 0.35, 0.8]}).to_csv(scores / f"{job}.csv")

    report = write_report(tmp_path / "results.csv").read_text()

    assert "## image_AUROC" in report and "| brick |" in report and "## Cost" in report
    for name in ("bar_image_AUROC", "alpha_image_AUROC", "roc_brick"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 1000, name
        assert f"plots/{name}.png" in report
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary.columns) >= {"metric", "category", "model", "mean", "std", "seeds"}
    assert summary.loc[summary["model"] == "Ganomaly", "mean"].item() == pytest.approx(0.95)


def test_failed_jobs_are_listed_under_their_variant_and_a_retried_one_is_not(tmp_path: Path) -> None:
    """A diverged seed must not vanish from the report: its variant's rows count one seed fewer."""
    results = results_frame()
    failed = tmp_path / "failed"
    failed.mkdir()
    config = {"model.class_path": "Cbigan", "model.init_args.alpha": 1.0, "model.init_args.input_size": "[64, 64]",
              "data.init_args.category": "brick", "seed": 2}  # fmt: skip
    (failed / "x2.txt").write_text(json.dumps(config) + "\nFloatingPointError: Cbigan diverged at batch 16\n")
    (failed / "cbrick1.00.txt").write_text(json.dumps({**config, "seed": 0}) + "\nRuntimeError: since retried\n")
    rows = failure_table(results, failed)
    assert rows == [{"dataset": "brick", "model": "Cbigan (alpha=1.0)", "seed": "2", "job": "x2",
                     "error": "FloatingPointError: Cbigan diverged at batch 16"}]  # fmt: skip
    results.to_csv(tmp_path / "results.csv", index=False)
    report = write_report(tmp_path / "results.csv", with_published=False).read_text()
    assert "## Jobs that failed" in report and "| brick | Cbigan (alpha=1.0) | 2 | x2 |" in report


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No results file"), ("", "no rows"), ("a,b\n1,2\n", "Not a benchmark results table")],
)
def test_bad_results_files_are_named(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "results.csv"
    if content is not None:
        path.write_text(content if content else "model.class_path,image_AUROC\n")
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        write_report(path)


def test_report_script_reports_a_missing_file_without_a_traceback(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "report_sweep.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "missing.csv")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "No results file" in result.stderr and "Traceback" not in result.stderr


def test_untrained_jobs_are_labelled_by_kind_not_by_the_training_arguments_they_lack() -> None:
    frame = tidy(pd.DataFrame({
        "model.class_path": ["Cbigan", "Cbigan", "Cbigan"],
        "model.trainer.max_epochs": [30, 60, None],
        "model.init_args.alpha": [0.1, 0.1, 0.1],
        "model.untrained": [None, None, True],
        "data.init_args.category": ["brick"] * 3,
    }))  # fmt: skip
    assert list(frame["model"]) == ["Cbigan (max_epochs=30)", "Cbigan (max_epochs=60)", "Cbigan (untrained)"]


def test_curve_points_of_one_planned_point_share_a_column_however_late_a_slow_batch_scored_them(
    tmp_path: Path,
) -> None:
    frame = tidy(pd.DataFrame({
        "job_id": ["s0", "s1"],
        "model.class_path": ["Fcbigan", "Fcbigan"],
        "data.init_args.category": ["grid", "grid"],
        "seed": [0, 1],
        "curve.unit": ["seconds", "seconds"],
        "curve.first": [30, 30],
        "curve.factor": [2, 2],
        "curve_points": [3, 3],
        "image_AUROC": [0.6, 0.7],
    }))  # fmt: skip
    (tmp_path / "curves").mkdir()
    runs = (("s0", [30.4, 60.2, 95.0], [0.5, 0.6, 0.7]), ("s1", [31.1, 61.0, 96.0], [0.7, 0.8, 0.9]))
    for job_id, seconds, test in runs:
        pd.DataFrame({"seconds": seconds, "updates": [10, 20, 30], "final": [False, False, True],
                      "val_image_AUROC": [0.5, 0.6, 0.7], "test_image_AUROC": test}).to_csv(  # fmt: skip
            tmp_path / "curves" / f"{job_id}.csv", index=False
        )
    (row,) = curve_points_table(frame, tmp_path / "curves")
    point_columns = [name for name in row if name.endswith((" s", " min"))]
    assert point_columns == ["30 s", "1 min"]
    assert row["30 s"].startswith("0.600") and row["1 min"].startswith("0.700")


def test_variants_run_on_different_seeds_are_chosen_on_the_seeds_they_share() -> None:
    """A winner's later seeds must not decide the choice: on its seed 0 it leads, its seeds 1-2 read lower."""
    frame = tidy(pd.DataFrame({
        "model.class_path": ["Cbigan"] * 4,
        "model.init_args.critic_steps": [5, 5, 5, 1],
        "data.init_args.category": ["brick"] * 4,
        "seed": [0, 1, 2, 0],
        "val_image_AUROC_raw": [0.70, 0.50, 0.50, 0.65],
        "image_AUROC": [0.80, 0.82, 0.84, 0.90],
    }))  # fmt: skip
    (row,) = selection_table(frame)
    assert row["model"] == "Cbigan (critic_steps=5)" and row["seeds"] == "3"
    assert row["chosen by"] == "best val_image_AUROC_raw of 2 variants on the seeds they share (seed 0)"
    assert row["image_AUROC"] == "0.820 ± 0.020"
