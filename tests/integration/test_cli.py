"""anomalib's own `anomalib` command with our models, by short name, in a subprocess."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.deploy import OpenVINOInferencer

from anomalib_cbigan import list_models

ANOMALIB = str(Path(sys.executable).with_name("anomalib"))


def _model_args(args: dict) -> list[str]:
    return [item for key, value in args.items() for item in (f"--model.{key}", _cli_value(value))]


def _cli_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return str(list(value))
    return str(value)


def _data_args(root: Path) -> list[str]:
    return [
        "--data", "anomalib.data.MVTecAD", "--data.root", str(root), "--data.category", "brick",
        "--data.num_workers", "0", "--data.train_batch_size", "4", "--data.eval_batch_size", "4",
    ]  # fmt: skip


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [ANOMALIB, *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=600, check=False)
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"anomalib {' '.join(args)}\n{output}"
    return result


# The whole chain starts three `anomalib` processes a model: every model with --runslow. The default suite covers
# train, export and inference by short name in test_wheel.py (Cbigan, from the installed wheel), and every name
# cheaply in test_every_short_name_parses_in_the_cli.
@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_train_test_predict_by_short_name(name: str, mvtec_root: Path, tmp_path: Path, fast_model_args: dict) -> None:
    out = tmp_path / "results"
    model_args = _model_args(fast_model_args)
    trained = _run(["train", "--model", name, *model_args, *_data_args(mvtec_root),
                    "--trainer.max_epochs", "1", "--default_root_dir", str(out)], tmp_path)  # fmt: skip
    assert "image_AUROC" in trained.stdout + trained.stderr  # `anomalib train` fits, then tests
    checkpoint = next(out.rglob("*.ckpt"))
    assert name in checkpoint.parts
    # `predict` and `export` below restore the model from this checkpoint through the CLI.

    images = mvtec_root / "brick" / "test" / "stain"
    _run(["predict", "--model", name, *model_args, "--data", str(images),
          "--ckpt_path", str(checkpoint), "--default_root_dir", str(out / "predict")], tmp_path)  # fmt: skip

    # Deployment: anomalib's export command, then anomalib's OpenVINO inferencer on the exported model.
    _run(["export", "--model", name, *model_args, "--ckpt_path", str(checkpoint), "--export_type", "openvino",
          "--default_root_dir", str(out / "export")], tmp_path)  # fmt: skip
    exported = next((out / "export").rglob("model.xml"))
    prediction = OpenVINOInferencer(exported, device="CPU").predict(next(images.glob("*.png")))
    assert 0.0 <= float(np.asarray(prediction.pred_score).reshape(-1)[0]) <= 1.0
    assert np.asarray(prediction.anomaly_map).shape[-2:] == (64, 64)


def test_config_file_with_short_class_path(mvtec_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "cbigan.yaml"
    config.write_text(
        f"""
model:
  class_path: Cbigan
  init_args:
    input_size: [64, 64]
    alpha: 0.001
    critic_steps: 1
    patches_per_epoch: 32
data:
  class_path: anomalib.data.MVTecAD
  init_args:
    root: {mvtec_root}
    category: brick
    num_workers: 0
    train_batch_size: 4
    eval_batch_size: 4
trainer:
  max_epochs: 1
default_root_dir: {tmp_path / "results"}
""",
    )
    _run(["fit", "-c", str(config)], tmp_path)
    assert next((tmp_path / "results").rglob("*.ckpt"))


def _print_args(*args: str) -> tuple[int, str]:
    """Parse ``anomalib fit ARGS`` with anomalib's CLI parser, in-process, instantiating nothing."""
    from anomalib.cli import AnomalibCLI

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        AnomalibCLI(args=["fit", *args, "--print_config"], run=False)
    return exit_.value.code or 0, out.getvalue() + err.getvalue()


def _print_config(config: Path, *extra: str) -> tuple[int, str]:
    """Parse ``config`` with anomalib's CLI parser, in-process (``--print_config`` instantiates nothing)."""
    return _print_args("-c", str(config), *extra)


@pytest.mark.parametrize("name", list_models())
def test_every_short_name_parses_in_the_cli(name: str, fast_model_args: dict) -> None:
    code, printed = _print_args("--model", name, *_model_args(fast_model_args), "--data", "anomalib.data.MVTecAD")
    assert code == 0, printed
    assert re.search(rf"class_path: anomalib_cbigan\.(\S+\.)?{name}\s", printed), printed  # the name resolved to ours


def test_shipped_configs_parse(tmp_path: Path) -> None:
    # Every key of our YAMLs must be a real argument of the model, data or trainer.
    root = Path(__file__).parents[2]
    for config in sorted((root / "configs" / "model").glob("*.yaml")):  # model configs: the user names the data
        code, printed = _print_config(config, "--data", "anomalib.data.MVTecAD")
        assert code == 0 and "class_path" in printed, config
    for recipe in sorted((root / "configs" / "recipes").glob("*.yaml")):  # recipes: complete as written
        code, printed = _print_config(recipe)
        assert code == 0 and "max_epochs" in printed, recipe
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (root / "configs" / "recipes" / "cbigan_mvtec_objects.yaml").read_text().replace("lambda_", "lamda")
    )
    code, printed = _print_config(broken)
    assert code != 0 and "lamda" in printed  # an unknown key fails the parse, and the message names it


def test_demo_trains_tests_and_writes_its_tables_and_figure(mvtec_root: Path, tmp_path: Path) -> None:
    # The main job, shortened to one epoch: the texture protocol (crops, tiles), the tables and the figure.
    from anomalib_cbigan.cli import DEMO_DEFAULTS, main

    out = tmp_path / "demo"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        args = ["--epochs", "1", "--batches-per-epoch", "4", "--data-root", str(mvtec_root), "--output", str(out)]
        assert main(["demo", *args]) == 0
    assert "random 64x64 crops, scored tile by tile" in printed.getvalue()
    table = (out / "metrics.md").read_text()
    assert "image_AUROC" in table and "pixel_AUPRO" in table and "reconstruction_error_ratio" in table
    assert "1 epochs of 4 batches" in printed.getvalue() and "of a flat image's" in printed.getvalue()
    assert (out / "metrics.csv").is_file() and (out / "reconstructions.png").stat().st_size > 10_000
    # The demo's schedule reaches the model: a faster critic (its recipe's critic_lr_ratio).
    hyper_parameters = torch.load(next(out.rglob("*.ckpt")), map_location="cpu", weights_only=False)
    assert hyper_parameters["hyper_parameters"]["critic_lr_ratio"] == DEMO_DEFAULTS["critic_lr_ratio"] != 1
