"""ValidationCurve: points where asked, logged, training unchanged by scoring, the best validation point restored,
a wall-clock budget extended by the scoring time; the sweep's curve rows, files and report."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from anomalib.engine import Engine
from lightning import seed_everything
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.trainer.states import RunningStage

from anomalib_cbigan import Cbigan, LocalMVTecAD
from anomalib_cbigan.training_curve import ValidationCurve, _extend_time_budget, score_loader

STEPS = 24  # critic_steps 1: 12 E/G updates


def fit(
    mvtec_root: Path, tmp_path: Path, whole_images: dict, curve: ValidationCurve | None
) -> tuple[Cbigan, LocalMVTecAD]:
    seed_everything(0)
    datamodule = LocalMVTecAD(root=mvtec_root, category="brick", train_batch_size=4, eval_batch_size=4,
                              num_workers=0, val_split_mode="synthetic", val_split_ratio=0.5,
                              synthetic_anomalies="defects", seed=0)  # fmt: skip
    model = Cbigan(input_size=(64, 64), critic_steps=1, visualizer=False, **whole_images)
    engine = Engine(max_steps=STEPS, callbacks=[curve] if curve else [], logger=CSVLogger(tmp_path / "logs"),
                    default_root_dir=tmp_path, enable_progress_bar=False, check_val_every_n_epoch=1000)  # fmt: skip
    engine.fit(model, datamodule=datamodule)
    return model, datamodule


def test_points_are_logged_and_scoring_leaves_training_unchanged(
    mvtec_root: Path, tmp_path: Path, whole_images: dict
) -> None:
    curve = ValidationCurve(unit="updates", first=2, factor=2, score_test=True, image_dir=tmp_path / "grids")
    with_curve, datamodule = fit(mvtec_root, tmp_path / "a", whole_images, curve)
    without, _ = fit(mvtec_root, tmp_path / "b", whole_images, None)

    assert [point.updates for point in curve.points] == [2, 4, 8, STEPS // 2]
    assert [point.final for point in curve.points] == [False, False, False, True]
    for point in curve.points:
        assert 0 <= point.val_image_AUROC <= 1 and 0 <= point.test_image_AUROC <= 1
        assert 0 <= point.val_pixel_AUROC <= 1 and 0 <= point.test_pixel_AUROC <= 1
    # The random generators are restored after each scoring: the same weights as a run without the callback.
    others = without.model.state_dict().values()
    for (name, value), other in zip(with_curve.model.state_dict().items(), others, strict=True):
        assert torch.equal(value, other), name
    # The last point scores the final weights as a direct scoring does.
    assert curve.points[-1].val_image_AUROC == score_loader(with_curve.eval(), datamodule.val_dataloader())[0]
    logged = pd.read_csv(next((tmp_path / "a" / "logs").rglob("metrics.csv")))
    scored = logged.dropna(subset=["val/image_AUROC_raw"])
    assert scored["step"].tolist() == [2, 4, 8, STEPS // 2]
    assert scored["test/image_AUROC_raw"].notna().all()
    assert len(list((tmp_path / "grids").glob("reconstructions_*.png"))) == 4  # noqa: PLR2004


def test_the_best_validation_point_is_restored(mvtec_root: Path, tmp_path: Path, whole_images: dict) -> None:
    curve = ValidationCurve(unit="updates", first=1, factor=2, restore_best=True)
    model, datamodule = fit(mvtec_root, tmp_path, whole_images, curve)
    best = max(curve.points[::-1], key=lambda point: point.val_image_AUROC)  # ties: the later point
    assert curve.best is not None and curve.best.updates == best.updates
    assert score_loader(model.eval(), datamodule.val_dataloader())[0] == pytest.approx(best.val_image_AUROC)
    # The post-processor was fitted to these weights on the validation split (a max_time stop never validates).
    assert torch.isfinite(model.post_processor.image_min) and torch.isfinite(model.post_processor.image_max)
    saved = torch.load(curve.chosen_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value), name
    assert curve.chosen_checkpoint.name == "validation_chosen.ckpt"


def test_scoring_time_is_given_back_to_a_wall_clock_budget() -> None:
    timer = Timer(duration="00:00:01:00")
    timer._start_time[RunningStage.TRAINING] = time.monotonic() - 50  # noqa: SLF001
    trainer = Namespace(callbacks=[timer])
    _extend_time_budget(trainer, 30.0)
    assert timer.time_elapsed() == pytest.approx(20, abs=1)


def test_bad_points_are_refused() -> None:
    with pytest.raises(ValueError, match="unit must be one of"):
        ValidationCurve(unit="epochs")
    with pytest.raises(ValueError, match="factor > 1"):
        ValidationCurve(factor=1)
    assert math.isclose(ValidationCurve(first=30, factor=2).point(3), 240)


def curve_sweep(mvtec_root: Path, model: dict, **benchmark: object) -> dict:
    """A sweep of twelve training steps a job on the small brick tree with a validation split, ``benchmark`` keys
    (``curve``, ...) added."""
    data = {"root": str(mvtec_root), "category": "brick", "train_batch_size": 4, "eval_batch_size": 4,
            "num_workers": 0, "val_split_mode": "synthetic", "val_split_ratio": 0.5, "seed": 0,
            "synthetic_anomalies": "defects"}  # fmt: skip
    trainer = {"max_steps": 12, "enable_progress_bar": False}
    data_section = {"class_path": "LocalMVTecAD", "init_args": data}
    return {"accelerator": "cpu",
            "benchmark": {"seed": 0, "trainer": trainer, "model": model, "data": data_section, **benchmark}}


def test_a_sweep_job_with_a_curve_writes_its_points_and_the_report_labels_the_test_selected_figure(
    tmp_path: Path, mvtec_root: Path, fast_args_by_name: Callable[[str], dict]
) -> None:
    from anomalib_cbigan_bench import Sweep
    from anomalib_cbigan_bench.report import write_report

    models = {"grid": [{"class_path": "Cbigan", "init_args": {**fast_args_by_name("Cbigan"), "alpha": alpha}}
                       for alpha in (0.1, 0.5, 0.9)]}  # fmt: skip
    config = curve_sweep(mvtec_root, models, curve={"unit": "updates", "first": 2, "factor": 2},
                         validations=["defects", "mixture"])  # fmt: skip
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    output = tmp_path / "out"

    results = Sweep(output_dir=output).run(Namespace(config=tmp_path / "sweep.yaml"))

    for _, row in results.iterrows():
        points = pd.read_csv(output / "curves" / f"{row['job_id']}.csv")
        assert points["updates"].tolist() == [2, 4, 6]
        assert row["curve_points"] == 3  # noqa: PLR2004
        best_test = points["test_image_AUROC"].max()
        assert row["test_selected_image_AUROC_raw"] == pytest.approx(best_test)
        chosen = points[points["val_image_AUROC"] == points["val_image_AUROC"].max()].iloc[-1]
        assert row["chosen_image_AUROC_raw"] == pytest.approx(chosen["test_image_AUROC"])
        assert points["test_image_AUROC"].iloc[-1] == pytest.approx(row["image_AUROC_raw"])  # the last weights
        # the sweep's own kind again, on the same images: the row's validation AUROC; the mixture beside it
        assert row["val_defects_image_AUROC_raw"] == pytest.approx(row["val_image_AUROC_raw"])
        assert 0 <= row["val_mixture_image_AUROC_raw"] <= 1 and 0 <= row["val_mixture_pixel_AUROC"] <= 1
    report = write_report(output / "results.csv").read_text()
    assert "| brick | mixture | 3 |" in report  # how well each kind ranks the test, one line each
    assert "| seeds | 2 updates | 4 updates |" in report  # the test AUROC at each point before the last
    assert "## Training curves" in report and "test-selected, shown beside, never used to choose" in report
    assert (output / "plots" / "curve_brick.png").is_file()
    # Curves of a final point only (a job shorter than its first point): the table of points along training is left out.
    for path in (output / "curves").glob("*.csv"):
        points = pd.read_csv(path)
        points[points["final"].astype(bool)].to_csv(path, index=False)
    report = write_report(output / "results.csv").read_text()
    assert "## Training curves" in report and "2 updates" not in report


def test_anomalib_train_with_the_example_config_logs_the_curve_and_tests_the_chosen_weights(
    mvtec_root: Path, tmp_path: Path
) -> None:
    example = Path(__file__).parents[2] / "configs" / "examples" / "cbigan_validation_curve.yaml"
    anomalib = str(Path(sys.executable).with_name("anomalib"))
    out = tmp_path / "results"
    command = [anomalib, "train", "-c", str(example), "--data.init_args.root", str(mvtec_root),
               "--data.init_args.val_split_ratio", "0.5", "--trainer.max_time", "00:00:00:40",
               "--model.init_args.patches_per_epoch", "64", "--default_root_dir", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "image_AUROC" in output and "Weights of the best validation point kept" in output
    logged = pd.read_csv(next((tmp_path / "results" / "validation_curve").rglob("metrics.csv")))
    assert logged["val/image_AUROC_raw"].notna().sum() >= 2  # noqa: PLR2004  # at 30 s... and at the end
    assert list((tmp_path / "results" / "validation_curve").glob("reconstructions_*.png"))
    chosen = next(out.rglob("validation_chosen.ckpt"))
    assert (chosen.parent / "model.ckpt").is_file()


def test_a_long_job_cut_off_resumes_from_its_checkpoint_with_its_curve(
    tmp_path: Path, mvtec_root: Path, fast_args_by_name: Callable[[str], dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from anomalib_cbigan_bench import Sweep
    from anomalib_cbigan_bench import job as job_module

    model = {"class_path": "Cbigan", "init_args": fast_args_by_name("Cbigan")}
    config = curve_sweep(mvtec_root, model, curve={"unit": "updates", "first": 1, "factor": 2},
                         checkpoint_minutes=1e-6)  # a checkpoint after every batch
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    output = tmp_path / "out"

    def cut_off(self: object, trainer: object, *args: object) -> None:
        if trainer.global_step >= 7:  # noqa: PLR2004  # the machine goes away mid-training
            raise RuntimeError("cut off")

    with monkeypatch.context() as patch:
        patch.setattr(job_module.ValidatedStep, "on_train_batch_end", cut_off, raising=False)
        Sweep(output_dir=output).run(Namespace(config=tmp_path / "sweep.yaml"))
    assert list((output / "failed").glob("*.txt"))
    assert list((output / "checkpoints").rglob("last.ckpt"))

    results = Sweep(output_dir=output).run(Namespace(config=tmp_path / "sweep.yaml"))

    row = results.iloc[0]
    assert bool(row["resumed"]) and row["trained_steps"] == 12  # noqa: PLR2004
    points = pd.read_csv(output / "curves" / f"{row['job_id']}.csv")
    assert points["updates"].tolist() == [1, 2, 4, 6]  # the points before the cut kept, the clock went on
    assert points["seconds"].is_monotonic_increasing
    assert not (output / "checkpoints" / row["job_id"]).exists()  # removed once the row is written
