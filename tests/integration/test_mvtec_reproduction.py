"""The MVTec AD reproduction script: planned on a generated MVTec-layout tree, run in smoke mode, resumed."""

from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from anomalib_cbigan.data import DatasetError

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reproduction() -> ModuleType:
    return _load("mvtec_reproduction")


@pytest.fixture(scope="module")
def mvtec_named_root(mvtec_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated tree under two real MVTec AD category names, one texture and one rotated object."""
    root = tmp_path_factory.mktemp("mvtec_named")
    for category in ("carpet", "bottle"):
        shutil.copytree(mvtec_root / "brick", root / category)
    return root


def test_every_category_has_a_recipe_for_each_model_that_applies(reproduction: ModuleType) -> None:
    categories = [*reproduction.TEXTURES, *reproduction.OBJECTS]
    assert len(categories) == 15
    for category in categories:
        for model in reproduction.MODELS:
            recipe = reproduction.recipe_for(model, category)
            if model == "Fcbigan" and category in reproduction.OBJECTS:
                assert recipe is None
            else:
                assert recipe.exists(), recipe
    assert reproduction.recipe_for("Cbigan", "screw").name == "cbigan_mvtec_objects_rotated.yaml"
    assert reproduction.recipe_for("Egbad", "cable").name == "egbad_mvtec_objects.yaml"
    with pytest.raises(ValueError, match="not an MVTec AD category"):
        reproduction.recipe_for("Cbigan", "brick")


def test_dry_run_plans_every_job_and_trains_nothing(reproduction: ModuleType, mvtec_named_root: Path,
                                                    tmp_path: Path) -> None:  # fmt: skip
    rows = reproduction.main(["--root", str(mvtec_named_root), "--categories", "carpet", "bottle", "--dry-run",
                              "--output", str(tmp_path)])  # fmt: skip
    assert [(r["model"], r["category"]) for r in rows] == [
        ("Cbigan", "carpet"), ("Cbigan", "bottle"), ("Egbad", "carpet"), ("Egbad", "bottle"),
        ("Fcbigan", "carpet"), ("Ganomaly", "carpet"), ("Ganomaly", "bottle"),
    ]  # fmt: skip
    assert {r["status"] for r in rows} == {"planned"}
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "results.csv").exists()


def test_missing_category_is_named_before_any_training(reproduction: ModuleType, mvtec_named_root: Path,
                                                       tmp_path: Path) -> None:  # fmt: skip
    with pytest.raises(DatasetError, match="grid"):
        reproduction.main(["--root", str(mvtec_named_root), "--categories", "grid", "--models", "Cbigan",
                           "--output", str(tmp_path)])  # fmt: skip


def test_smoke_run_writes_results_and_a_rerun_skips_finished_jobs(
    reproduction: ModuleType,
    mvtec_named_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    args = ["--root", str(mvtec_named_root), "--models", "Cbigan", "--smoke", "--output", str(tmp_path)]
    reproduction.main([*args, "--categories", "carpet"])
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["model"], r["category"], r["status"]) for r in rows] == [("Cbigan", "carpet", "done")]
    assert 0.0 <= float(rows[0]["image_MaxBalancedAccuracy"]) <= 1.0
    assert (tmp_path / "results.md").exists()

    # "Interrupted" after carpet: the re-run with both categories runs bottle only and keeps carpet's row.
    capsys.readouterr()
    reproduction.main([*args, "--categories", "carpet", "bottle"])
    assert "1 jobs to run, 1 already in" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["model"], r["category"]) for r in rows] == [("Cbigan", "carpet"), ("Cbigan", "bottle")]
