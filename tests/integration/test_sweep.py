"""Sweeps through anomalib's benchmark pipeline: every registered model beside GANomaly, 2 CPU workers, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import yaml

from anomalib_cbigan import list_models
from anomalib_cbigan_bench import Sweep, SweepConfigError
from anomalib_cbigan_bench.report import write_report
from anomalib_cbigan_bench.timing import processor

# One optimiser step a job: the test is about the pipeline, not about learning.
ONE_STEP = {"max_epochs": 1, "limit_train_batches": 1, "enable_progress_bar": False}
GANOMALY_64 = {
    "class_path": "Ganomaly",
    "init_args": {
        "batch_size": 4,
        "pre_processor": {
            "class_path": "anomalib.pre_processing.PreProcessor",
            "init_args": {
                "transform": {"class_path": "torchvision.transforms.v2.Resize", "init_args": {"size": [64, 64]}}
            },
        },
    },
}


def sweep_config(path: Path, mvtec_root: Path, models: list[dict], **top: object) -> Path:
    config = {
        "accelerator": "cpu",
        **top,
        "benchmark": {
            "seed": 0,
            "trainer": ONE_STEP,
            "model": {"grid": models},
            "data": {
                "class_path": "LocalMVTecAD",
                "init_args": {
                    "root": str(mvtec_root),
                    "category": "brick",
                    "train_batch_size": 4,
                    "eval_batch_size": 4,
                    "num_workers": 0,  # MVTecAD's default of 8 loader processes per job swamps 2 cores
                },
            },
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def every_model_and_ganomaly(args_for: Callable[[str], dict]) -> list[dict]:
    return [{"class_path": name, "init_args": args_for(name)} for name in list_models()] + [GANOMALY_64]


# Slow (about 75 s): every model through two worker processes. The default suite keeps the harness's single-worker
# runs, a rerun that skips finished jobs (the failing-job test) and anomalib's benchmark CLI on our models.
@pytest.mark.slow
def test_two_cpu_workers_run_every_model_and_a_rerun_skips_finished_jobs(
    tmp_path: Path, mvtec_root: Path, capfd: pytest.CaptureFixture[str], fast_args_by_name: Callable[[str], dict]
) -> None:
    config = sweep_config(tmp_path / "sweep.yaml", mvtec_root, every_model_and_ganomaly(fast_args_by_name))
    output = tmp_path / "out"

    results = Sweep(output_dir=output, workers=2).run(Namespace(config=config))

    models = [*list_models(), "Ganomaly"]
    assert sorted(results["model.class_path"]) == sorted(models)
    assert set(results["worker"]) == {0, 1}, "both CPU workers took jobs"
    for column in ("seed", "fit_duration", "test_duration", "inference_ms_per_image", "image_AUROC"):
        assert results[column].notna().all(), column
    assert (results["test_images"] == 12).all()
    assert pd.read_csv(output / "results.csv").shape[0] == len(models)
    rows = {path: path.stat().st_mtime_ns for path in (output / "rows").glob("*.json")}
    assert len(rows) == len(models)

    # Interrupted sweep, simulated: one job's row is missing. A re-run does that job only.
    lost = min(rows)
    lost_model = json.loads(lost.read_text())["model.class_path"]
    lost.unlink()
    capfd.readouterr()
    rerun = Sweep(output_dir=output, workers=2).run(Namespace(config=config))
    printed = capfd.readouterr().out
    assert printed.count("finished in an earlier run, skipped") == len(models) - 1
    assert printed.count("starting") == 1 and lost_model in printed
    assert len(rerun) == len(models)
    for path, mtime in rows.items():
        if path != lost:
            assert path.stat().st_mtime_ns == mtime, f"{path.name} was redone"

    # The report reads the results and the per-image scores.
    report = write_report(output / "results.csv")
    text = report.read_text()
    assert all(model in text for model in models)
    assert (output / "plots" / "bar_image_AUROC.png").stat().st_size > 0
    assert (output / "plots" / "roc_brick.png").stat().st_size > 0


def test_a_failing_job_is_recorded_and_retried_and_the_others_finish(
    tmp_path: Path, mvtec_root: Path, fast_args_by_name: Callable[[str], dict]
) -> None:
    # FCBiGAN refuses to train on images smaller than its patch: a job that fails at fit time.
    failing = {
        "class_path": "Fcbigan",
        "init_args": {**fast_args_by_name("Fcbigan"), "input_size": None, "patch_size": 256},
    }
    working = {"class_path": "Cbigan", "init_args": fast_args_by_name("Cbigan")}
    config = sweep_config(tmp_path / "sweep.yaml", mvtec_root, [failing, working])
    output = tmp_path / "out"

    results = Sweep(output_dir=output).run(Namespace(config=config))

    assert list(results["model.class_path"]) == ["Cbigan"]
    failures = list((output / "failed").glob("*.txt"))
    assert len(failures) == 1
    assert "patch" in failures[0].read_text().lower()
    # The failure is retried by the next run (and fails the same way); the finished job is not redone.
    rerun = Sweep(output_dir=output).run(Namespace(config=config))
    assert list(rerun["model.class_path"]) == ["Cbigan"]
    assert len(list((output / "failed").glob("*.txt"))) == 1


def test_a_wall_clock_budget_stops_training_and_validates_before_the_test(
    tmp_path: Path, mvtec_root: Path, fast_args_by_name: Callable[[str], dict]
) -> None:
    # Lightning's max_time stops mid-epoch, where it does not validate: the job validates the final weights.
    cbigan = {"class_path": "Cbigan", "init_args": fast_args_by_name("Cbigan")}
    config = sweep_config(tmp_path / "sweep.yaml", mvtec_root, [cbigan])
    settings = yaml.safe_load(config.read_text())
    settings["benchmark"]["trainer"] = {"max_time": "00:00:00:03", "max_epochs": -1, "check_val_every_n_epoch": 1000,
                                        "enable_progress_bar": False}  # fmt: skip
    settings["benchmark"]["in_memory"] = {"batches_per_epoch": 100_000}
    config.write_text(yaml.safe_dump(settings))

    results = Sweep(output_dir=tmp_path / "out").run(Namespace(config=config))

    row = results.iloc[0]
    assert bool(row["validated_after_stop"])
    assert 3 <= row["fit_duration"] < 60
    assert 0.0 <= row["image_AUROC"] <= 1.0 and 0.0 <= row["image_F1Score"] <= 1.0


def test_anomalib_benchmark_cli_runs_our_models_by_short_name(
    tmp_path: Path, mvtec_root: Path, fast_args_by_name: Callable[[str], dict]
) -> None:
    """anomalib's own `anomalib benchmark` (its pipeline, unmodified) finds Cbigan and LocalMVTecAD by name.

    It passes no trainer arguments, so Lightning's environment variables bound the training.
    """
    config = {
        "accelerator": "cpu",
        "benchmark": {
            "seed": 0,
            "model": {"class_path": "Cbigan", "init_args": fast_args_by_name("Cbigan")},
            "data": {"class_path": "LocalMVTecAD", "init_args": {"root": str(mvtec_root), "category": "brick", "num_workers": 0}},
        },
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PL_TRAINER_MAX_EPOCHS": "1", "PL_TRAINER_LIMIT_TRAIN_BATCHES": "1"}
    anomalib = Path(sys.executable).with_name("anomalib")
    result = subprocess.run(
        [str(anomalib), "benchmark", "--config", "sweep.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    csv_files = list((tmp_path / "runs" / "benchmark").rglob("results.csv"))
    assert csv_files, result.stdout[-3000:] + (tmp_path / "runs" / "pipeline.log").read_text()[-3000:]
    results = pd.read_csv(csv_files[0])
    assert list(results["model.class_path"]) == ["Cbigan"]
    assert 0.0 <= results["image_AUROC"].iloc[0] <= 1.0
    # Our report script takes anomalib's CSV as it is.
    report = write_report(csv_files[0], tmp_path / "report")
    assert "Cbigan" in report.read_text()


def test_dry_run_checks_every_jobs_data_and_trains_nothing(
    tmp_path: Path, mvtec_root: Path, fast_args_by_name: Callable[[str], dict], capsys: pytest.CaptureFixture[str]
) -> None:
    cbigan = {"class_path": "Cbigan", "init_args": fast_args_by_name("Cbigan")}
    config = sweep_config(tmp_path / "sweep.yaml", mvtec_root, [cbigan])
    settings = yaml.safe_load(config.read_text())
    settings["benchmark"]["data"]["init_args"]["category"] = {"grid": ["brick", "grid"]}  # 'grid' is not there
    config.write_text(yaml.safe_dump(settings))
    output = tmp_path / "out"

    # A real run stops at the second job's missing data before the first job trains; so does a dry run.
    for runner in (Sweep(output_dir=output).run, Sweep(output_dir=output).plan):
        with pytest.raises(SweepConfigError, match=r"Cbigan × grid × seed 0: its data is not usable"):
            runner(Namespace(config=config))
    assert not (output / "rows").exists()

    settings["benchmark"]["data"]["init_args"]["category"] = {"grid": ["brick"]}
    config.write_text(yaml.safe_dump(settings))
    plan = Sweep(output_dir=output).plan(Namespace(config=config))
    assert list(plan["status"]) == ["to run"]
    assert "1 jobs to run, 0 finished" in capsys.readouterr().out
    assert not (output / "rows").exists() and not (output / "results.csv").exists()


def test_smoke_mode_passthrough_options_and_untrained_jobs(
    tmp_path: Path,
    mvtec_root: Path,
    fast_args_by_name: Callable[[str], dict],
    capsys: pytest.CaptureFixture[str],
    benchmark_script: Callable[[str], ModuleType],
) -> None:
    """One run of the script: smoke mode cuts a long training to 2 steps in its own folder, options after `--`
    reach the models and the trainer, an untrained entry is validated and tested only, and the report shows
    both with their figures."""
    run_sweep = benchmark_script("run_sweep")
    args = fast_args_by_name("Cbigan")
    trained = {"class_path": "Cbigan", "init_args": args, "trainer": {"max_epochs": 500}}  # far too long but for smoke
    untrained = {"class_path": "Cbigan", "init_args": args, "untrained": True}
    config = sweep_config(tmp_path / "sweep.yaml", mvtec_root, [trained, untrained], output=str(tmp_path / "out"))

    status = run_sweep.main(["--config", str(config), "--smoke", "--", "--model.init_args.lr", "3e-4",
                             "--trainer.log_every_n_steps", "1"])  # fmt: skip

    assert status == 0, capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    results = pd.read_csv(tmp_path / "out_smoke" / "results.csv").sort_values("trained_steps")
    assert list(results["trained_steps"] > 0) == [False, True]
    assert (results["model.init_args.lr"] == 3e-4).all()
    assert (results["trainer.log_every_n_steps"] == 1).all()
    assert (results["trainer.max_steps"] == 2).all()
    assert results["image_AUROC_raw"].between(0, 1).all()
    assert (results["processor"] == processor()).all()  # what a fixed training time was bought on
    report = (tmp_path / "out_smoke" / "report.md").read_text()
    assert "Cbigan (untrained)" in report
    assert f"{processor()} (1)" in report  # the cost table names each variant's processor
    figures = sorted((tmp_path / "out_smoke" / "figures").glob("*.png"))
    assert len(figures) == 2 and all(figure.stat().st_size > 0 for figure in figures)
    assert all(f"figures/{figure.name}" in report for figure in figures)

    assert run_sweep.main(["--config", str(config), "--", "--model.init_args.no_such_argument", "1"]) == 2
    assert "no model of this sweep takes 'no_such_argument'" in capsys.readouterr().err


def test_settings_are_chosen_on_validation_and_the_brightness_shortcut_is_flagged(
    tmp_path: Path, mvtec_root: Path, fast_args_by_name: Callable[[str], dict]
) -> None:
    """grid.yaml's features on the small tree: a model's own data section, a validation set of held-out training
    images with painted defects, two variants chosen between on it, the shortcut check, a brightness dataset."""
    crops = {"init_args": {"train_augmentations": {"class_path": "torchvision.transforms.v2.RandomCrop",
                                                    "init_args": {"size": [64, 64]}}}}  # fmt: skip
    tiles = {**fast_args_by_name("Cbigan"), "tile_images": True}
    models = [
        {"class_path": "Cbigan", "init_args": {**tiles, "alpha": 0.1}, "data": crops, "chosen_by": "a guess"},
        {"class_path": "Cbigan", "init_args": {**tiles, "alpha": 0.5}, "data": crops, "chosen_by": "a guess"},
        {"class_path": "anomalib_cbigan_bench.shortcut.MeanIntensity", "init_args": {"mode": "mean"}},
    ]
    config = yaml.safe_load(sweep_config(tmp_path / "sweep.yaml", mvtec_root, models).read_text())
    config["benchmark"]["data"]["init_args"] |= {"val_split_mode": "synthetic", "val_split_ratio": 0.5, "seed": 0,
                                                 "synthetic_anomalies": "defects",
                                                 "standardize_brightness": {"grid": [None, 0.4]}}  # fmt: skip
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    output = tmp_path / "out"

    results = Sweep(output_dir=output).run(Namespace(config=tmp_path / "sweep.yaml"))

    assert len(results) == 6  # noqa: PLR2004  # 3 entries x 2 brightness datasets
    assert (results["val_images"] == 4).all()  # noqa: PLR2004  # half of the 8 training images held out
    assert results["val_image_AUROC_raw"].between(0, 1).all()
    cbigan = results[results["model.class_path"] == "Cbigan"]
    assert "RandomCrop" in str(cbigan["data.init_args.train_augmentations.class_path"].iloc[0])  # its own data
    assert (cbigan["model.chosen_by"] == "a guess").all()
    report = write_report(output / "results.csv").read_text()
    chosen = report.split("## Settings chosen without test labels")[1].split("\n## ")[0]
    assert "best val_image_AUROC_raw of 2 variants" in chosen and "a guess" in chosen
    assert chosen.count("| brick (brightness 0.4) |") == 2  # noqa: PLR2004  # Cbigan and MeanIntensity
    assert "image AUROC per defect type" in report
    for defect in ("scratch", "hole", "stain", "cut_paste"):
        assert f"| {defect} " in report or f"| {defect} |" in report


def test_the_shortcut_flag_names_a_dataset_where_brightness_alone_scores(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "model.class_path": ["anomalib_cbigan_bench.shortcut.MeanIntensity", "Cbigan"] * 2,
        "data.init_args.category": ["grid"] * 4,
        "data.init_args.standardize_brightness": [None, None, 0.45, 0.45],
        "seed": [0] * 4,
        "image_AUROC_raw": [0.94, 0.8, 0.55, 0.7],
        "image_AUROC": [0.94, 0.8, 0.55, 0.7],
    })
    frame.to_csv(tmp_path / "results.csv", index=False)
    report = write_report(tmp_path / "results.csv", with_published=False).read_text()
    assert "**Shortcut on grid**" in report and "0.940" in report
    assert "Shortcut on grid (brightness" not in report


def test_collect_writes_the_finished_jobs_rows_in_the_plans_order_and_trains_nothing(
    tmp_path: Path,
    mvtec_root: Path,
    fast_args_by_name: Callable[[str], dict],
    benchmark_script: Callable[[str], ModuleType],
) -> None:
    """A sweep stopped between jobs: its rows are there, its results.csv is not (or is older than its rows)."""
    run_sweep = benchmark_script("run_sweep")
    models = [{"class_path": "Cbigan", "init_args": {**fast_args_by_name("Cbigan"), "alpha": alpha}}
              for alpha in (0.1, 0.5, 0.9)]  # fmt: skip
    output = tmp_path / "out"
    config = sweep_config(tmp_path / "sweep.yaml", mvtec_root, models, output=str(output))
    job_ids = list(Sweep().plan(Namespace(config=config))["job_id"])
    assert run_sweep.main(["--config", str(config), "--collect"]) == 0
    assert not (output / "results.csv").exists()  # nothing finished: nothing written

    (output / "rows").mkdir(parents=True)
    for job_id, alpha in ((job_ids[2], 0.9), (job_ids[0], 0.1)):  # finished out of order; the middle job never ran
        row = {"job_id": job_id, "model.class_path": "Cbigan", "model.init_args.alpha": alpha, "seed": 0,
               "data.init_args.category": "brick", "image_AUROC": 0.5 + alpha / 10, "fit_duration": 1.0}  # fmt: skip
        (output / "rows" / f"{job_id}.json").write_text(json.dumps(row))
    assert run_sweep.main(["--config", str(config), "--collect"]) == 0
    results = pd.read_csv(output / "results.csv")
    assert list(results["job_id"]) == [job_ids[0], job_ids[2]]
    assert (output / "report.md").is_file() and not (output / "checkpoints").exists()
