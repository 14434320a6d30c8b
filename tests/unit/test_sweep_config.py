"""Sweep configurations: the shipped ones are runnable, bad ones fail before the first job with a named problem."""

from __future__ import annotations

import copy
import json
import os
from argparse import Namespace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from anomalib_cbigan import list_models
from anomalib_cbigan_bench import Sweep, SweepConfigError, SweepJobGenerator, finished_rows, job_id
from anomalib_cbigan_bench.data_roots import expand_all
from anomalib_cbigan_bench.generator import grid_points

SWEEPS = Path(__file__).resolve().parents[2] / "benchmarks" / "sweeps"
RESULTS = SWEEPS.parent / "results" / "sweeps"
SLOW_TO_BUILD = {"grid_choices", "embedded_textures"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    "path",
    # Slow: the GPU sweeps (anomalib's own models take seconds each for jsonargparse to build; their settings are
    # checked against the recipes below in the default suite) and the two finished CPU sweeps that build the most
    # of anomalib's models (about 20 s each), whose entries pin every setting they ran with.
    [pytest.param(path, id=path.stem,
                  marks=[pytest.mark.slow] if path.stem in SLOW_TO_BUILD or path.stem.endswith("_gpu") else [])
     for path in sorted(SWEEPS.glob("*.yaml"))],
)  # fmt: skip
def test_every_shipped_sweep_builds_all_its_models_and_datamodules(path: Path, tmp_path: Path) -> None:
    config = expand_all(load(path), environ={})  # the data roots' defaults, as the committed results ran
    generator = SweepJobGenerator(config["accelerator"], tmp_path)
    jobs = generator.plan(config["benchmark"], check_data=False)
    assert jobs
    assert len({job_id(job) for job in jobs}) == len(jobs)  # no two grid points alike
    results = RESULTS / path.stem / "results.csv"
    if results.is_file():
        # Its committed results are jobs it plans: a config edited after its run, or a default that moved under an
        # entry that did not pin it, would make a re-run redo jobs the report shows as done. A sweep that outlasts
        # a session commits its finished rows and resumes, so a planned job may have none yet.
        assert set(pd.read_csv(results)["job_id"]) <= set(generator.job_ids(jobs))


def test_the_default_comparison_has_every_registered_model_and_ganomaly() -> None:
    models = load(SWEEPS / "embedded_textures.yaml")["benchmark"]["model"]["grid"]
    names = {model["class_path"].rsplit(".", 1)[-1] for model in models}
    assert names >= {*list_models(), "Ganomaly"}


def test_the_full_mvtec_sweep_covers_every_category_with_every_model() -> None:
    seen: dict[str, set[str]] = {}
    for path in SWEEPS.glob("mvtec_*_gpu.yaml"):
        benchmark = load(path)["benchmark"]
        for model in benchmark["model"]["grid"]:
            seen.setdefault(model["class_path"], set()).update(benchmark["data"]["init_args"]["category"]["grid"])
    textures = {"carpet", "grid", "leather", "tile", "wood"}
    objects = {
        "bottle",
        "cable",
        "capsule",
        "hazelnut",
        "metal_nut",
        "pill",
        "screw",
        "toothbrush",
        "transistor",
        "zipper",
    }
    for model in ("Cbigan", "Egbad", "Skipganomaly", "Sagan", "Ganomaly", "Draem"):
        assert seen[model] == textures | objects, model
    assert seen["Fcbigan"] == textures


RECIPES = SWEEPS.parents[1] / "configs" / "recipes"
# (sweep file, model) -> the recipe whose protocol its entry must have
PAPER_PROTOCOLS = {
    ("mvtec_objects_gpu", "Cbigan"): "cbigan_mvtec_objects",
    ("mvtec_objects_gpu", "Egbad"): "egbad_mvtec_objects",
    ("mvtec_objects_rotated_gpu", "Cbigan"): "cbigan_mvtec_objects_rotated",
    ("mvtec_objects_rotated_gpu", "Egbad"): "egbad_mvtec_objects_rotated",
    ("mvtec_textures_cbigan_gpu", "Cbigan"): "cbigan_mvtec_textures",
    ("mvtec_textures_cbigan_gpu", "Egbad"): "egbad_mvtec_textures",
    ("mvtec_textures_gpu", "Fcbigan"): "fcbigan_mvtec_textures",
    ("mvtec_textures_gpu", "Ganomaly"): "ganomaly_mvtec",
}


@pytest.mark.parametrize(("sweep", "model"), sorted(PAPER_PROTOCOLS), ids=lambda value: str(value))
def test_the_mvtec_sweeps_run_the_recipes_protocols(sweep: str, model: str) -> None:
    """The GPU reproduction is the recipes' protocol: same model arguments, training length, batches, rotation."""
    recipe = load(RECIPES / f"{PAPER_PROTOCOLS[sweep, model]}.yaml")
    benchmark = load(SWEEPS / f"{sweep}.yaml")["benchmark"]
    entry = next(e for e in benchmark["model"]["grid"] if e["class_path"].rsplit(".", 1)[-1] == model)
    wrapped = recipe["data"]["init_args"]["datamodule"]["init_args"]
    args = dict(entry.get("init_args", {}))
    assert args.pop("batch_size", wrapped["train_batch_size"]) == wrapped["train_batch_size"]
    if model == "Ganomaly":  # the sweep's evaluator adds pixel metrics to the recipe's
        args.pop("evaluator")
        recipe["model"]["init_args"].pop("evaluator")
    assert args == recipe["model"]["init_args"]
    trainer = {**benchmark.get("trainer", {}), **entry.get("trainer", {})}
    for key in ("max_steps", "max_epochs"):
        assert trainer.get(key) == recipe["trainer"].get(key), key
    in_memory = entry.get("in_memory", benchmark.get("in_memory"))
    in_memory = {} if in_memory is True else in_memory
    for key in ("batches_per_epoch", "image_size"):
        assert in_memory.get(key) == recipe["data"]["init_args"].get(key), key
    rotation = [t for t in [wrapped.get("train_augmentations", {})] if "Rotation" in str(t)]
    assert bool(rotation) == ("Rotation" in str(benchmark["data"]["init_args"].get("train_augmentations"))), "rotation"


def minimal(**changes: object) -> dict:
    benchmark = {
        "seed": 0,
        "model": {"class_path": "Cbigan", "init_args": {"input_size": [64, 64]}},
        "data": {"class_path": "TextureAnomalies", "init_args": {"category": "brick"}},
    }
    benchmark.update(changes)
    return benchmark


@pytest.mark.parametrize(
    ("benchmark", "message"),
    [
        (minimal(model={"class_path": "Cbigan", "init_args": {"alpha": 3}}), "alpha must be in"),
        (minimal(model={"class_path": "Cbigan", "init_args": {"alpha": "high"}}), "alpha"),
        (minimal(model={"class_path": "NoSuchModel"}), "NoSuchModel"),
        (minimal(data={"class_path": "TextureAnomalies", "init_args": {"category": "wood"}}), "categories"),
        ({"seed": 0, "model": {"class_path": "Cbigan"}}, "needs `data`"),
        ({}, "no `benchmark` section"),
        (minimal(in_memory={"batches_per_epoch": 0}), "batches_per_epoch must be at least 1"),
        (minimal(in_memory={"batch_per_epoch": 10}), "batch_per_epoch"),
        (minimal(validations=["dtd"]), "`validations` is a list of"),
    ],
    ids=["alpha-range", "alpha-type", "unknown-model", "unknown-category", "no-data", "empty", "in-memory-value",
         "in-memory-key", "validation-kind"],  # fmt: skip
)
def test_bad_configurations_name_the_problem(benchmark: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(SweepConfigError, match=message):
        SweepJobGenerator("cpu", tmp_path).plan(benchmark)


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"workers": 0}, "workers must be"),
        ({"workers": "two"}, "workers must be"),
        ({"accelerator": "tpu"}, "tpu"),
        ({"worker": 2}, r"unknown key\(s\) \['worker'\]"),
    ],
)
def test_bad_pipeline_settings_fail_before_any_job(top: dict, message: str, tmp_path: Path) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"accelerator": "cpu", **top, "benchmark": minimal()}))
    with pytest.raises(SweepConfigError, match=message):
        Sweep(output_dir=tmp_path / "out").run(Namespace(config=config))
    assert not (tmp_path / "out" / "rows").exists()


def test_a_runner_is_one_of_the_known_and_an_address_is_a_ray_clusters() -> None:
    with pytest.raises(SweepConfigError, match=r"runner must be one of \['anomalib', 'ray'\]"):
        Sweep(runner="dask")
    with pytest.raises(SweepConfigError, match="needs runner='ray'"):
        Sweep(address="auto")


def test_the_ray_runner_gets_the_config_before_its_data_roots_are_expanded(tmp_path: Path) -> None:
    from anomalib_cbigan_bench.ray_runner import RayRunner

    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"accelerator": "cpu", "workers": 2,
                                      "benchmark": minimal(data={"class_path": "LocalMVTecAD",
                                                                 "init_args": {"root": "${MVTEC_ROOT}"}})}))  # fmt: skip
    sweep = Sweep(output_dir=tmp_path / "out", runner="ray", address="auto")
    (runner,) = sweep._setup_runners(sweep._get_args(Namespace(config=config)))
    assert isinstance(runner, RayRunner) and runner.address == "auto"
    assert runner.raw_args["data"]["init_args"]["root"] == "${MVTEC_ROOT}"  # each worker expands its own
    assert runner.resources() == {"num_cpus": max(1, (os.cpu_count() or 1) // 2)}


def test_an_unknown_benchmark_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"accelerator": "cpu", "benchmark": {**minimal(), "trainr": {"max_epochs": 1}}}))
    with pytest.raises(SweepConfigError, match=r"unknown key\(s\) \['benchmark.trainr'\]"):
        Sweep(output_dir=tmp_path / "out").run(Namespace(config=config))


def test_a_config_error_in_a_later_job_stops_the_sweep_before_the_first(tmp_path: Path) -> None:
    config = tmp_path / "sweep.yaml"
    models = {"grid": [{"class_path": "Cbigan"}, {"class_path": "Cbigan", "init_args": {"lambda_": -1}}]}
    config.write_text(yaml.safe_dump({"accelerator": "cpu", "benchmark": minimal(model=models)}))
    with pytest.raises(SweepConfigError, match="lambda_"):
        Sweep(output_dir=tmp_path / "out").run(Namespace(config=config))
    assert not (tmp_path / "out" / "rows").exists()


def test_job_ids_are_stable_and_tell_seeds_apart() -> None:
    first = {"seed": 0, "model.class_path": "Cbigan", "data.init_args.category": "brick"}
    assert job_id(first) == job_id(dict(reversed(first.items())))
    assert job_id(first) != job_id({**first, "seed": 1})


def test_building_a_job_does_not_rename_it(tmp_path: Path) -> None:
    # A model entry with class configs in a list (an evaluator's metrics): building it once to check it must not
    # turn them into parsed objects in the plan, or the built job's name differs from its unbuilt twin's (a re-run
    # that builds other jobs first would not find its row).
    auroc = {"class_path": "anomalib.metrics.AUROC", "init_args": {"fields": ["pred_score", "gt_label"], "prefix": "i_"}}
    evaluator = {"class_path": "anomalib.metrics.Evaluator", "init_args": {"test_metrics": [auroc]}}
    benchmark = minimal(model={"class_path": "Cbigan", "init_args": {"input_size": [64, 64], "evaluator": evaluator}})
    generator = SweepJobGenerator("cpu", tmp_path)
    unbuilt = generator.job_ids(grid_points(copy.deepcopy(benchmark)))
    assert generator.job_ids(generator.plan(benchmark, check_data=False)) == unbuilt


def test_a_models_own_seed_wins_over_the_sweeps_and_the_command_lines_over_both(tmp_path: Path) -> None:
    from anomalib_cbigan_bench.overrides import apply_overrides

    models = {"grid": [{"class_path": "Cbigan"}, {"class_path": "Cbigan", "seed": 2}]}
    generator = SweepJobGenerator("cpu", tmp_path)
    points = generator.plan(minimal(model=models), check_data=False)
    assert [point["seed"] for point in points] == [0, 2]
    assert "seed" not in points[1]["model"]  # not a model argument
    # the same job as a sweep-wide seed 2: a later stage's row is found by the same name
    sweep_wide = generator.plan(minimal(model={"class_path": "Cbigan"}, seed=2), check_data=False)
    assert generator.job_ids(points)[1] == generator.job_ids(sweep_wide)[0]
    overridden = generator.plan(apply_overrides(minimal(model=models), {"seed": 5}), check_data=False)
    assert [point["seed"] for point in overridden] == [5, 5]
    assert len(set(generator.job_ids(overridden))) == 1  # one job: the second finds the first's row and is skipped
    with pytest.raises(SweepConfigError, match="`seed` is one whole number"):
        generator.plan(minimal(model={"class_path": "Cbigan", "seed": [1, 2]}), check_data=False)


def test_a_jobs_initial_weights_depend_on_its_seed_only(tmp_path: Path, mvtec_root: Path) -> None:
    import torch

    benchmark = minimal(
        seed={"grid": [3, 3]},  # the same grid point twice: the second is built after the first
        data={"class_path": "LocalMVTecAD", "init_args": {"root": str(mvtec_root), "category": "brick"}},
    )
    first, second = SweepJobGenerator("cpu", tmp_path).generate_jobs(benchmark, None)
    torch.rand(100)  # whatever else the process draws must not matter either
    (third,) = list(SweepJobGenerator("cpu", tmp_path).generate_jobs(minimal(**{**benchmark, "seed": 3}), None))
    for job in (second, third):
        for name, value in first.model.state_dict().items():
            torch.testing.assert_close(value, job.model.state_dict()[name], rtol=0, atol=0, equal_nan=True, msg=name)


def test_a_planned_sweep_is_not_built_again_before_its_jobs(
    tmp_path: Path, mvtec_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anomalib_cbigan_bench import generator as generator_module

    builds = []
    build = generator_module._build
    monkeypatch.setattr(generator_module, "_build", lambda parser, job: builds.append(job) or build(parser, job))
    benchmark = minimal(data={"class_path": "LocalMVTecAD", "init_args": {"root": str(mvtec_root), "category": "brick"}})
    generator = SweepJobGenerator("cpu", tmp_path)
    generator.plan(benchmark)  # Sweep.run checks the plan first...
    list(generator.generate_jobs(benchmark, None))  # ...then the runner asks for the jobs
    assert len(builds) == 2  # one check, one job; not a second check


def test_in_memory_wraps_each_jobs_datamodule_and_a_model_can_opt_out(tmp_path: Path, mvtec_root: Path) -> None:
    from anomalib_cbigan.data import InMemoryDataModule

    models = {"grid": [
        {"class_path": "Cbigan", "init_args": {"input_size": [64, 64]}, "in_memory": {"batches_per_epoch": 7}},
        {"class_path": "Egbad", "init_args": {"input_size": [64, 64]}},
        {"class_path": "Egbad", "init_args": {"input_size": [32, 32]}, "in_memory": False},
    ]}  # fmt: skip
    data = {"class_path": "LocalMVTecAD", "init_args": {"root": str(mvtec_root), "category": "brick"}}
    jobs = list(SweepJobGenerator("cpu", tmp_path).generate_jobs(minimal(model=models, data=data, in_memory=True), None))
    cbigan, egbad, opted_out = (job.datamodule for job in jobs)
    assert isinstance(cbigan, InMemoryDataModule) and cbigan.batches_per_epoch == 7  # the model's entry wins
    assert isinstance(egbad, InMemoryDataModule) and egbad.batches_per_epoch is None  # the sweep's `true`
    assert not isinstance(opted_out, InMemoryDataModule)
    assert cbigan.category == "brick"  # rows and reports name the wrapped data's category


def test_finished_rows_follow_the_plan_then_age_whatever_the_files_ages(tmp_path: Path) -> None:
    rows = tmp_path / "rows"
    rows.mkdir()
    for age, name in enumerate(["c", "a", "old", "b", "new"]):  # written in this order, oldest first
        (rows / f"{name}.json").write_text(json.dumps({"job_id": name}))
        os.utime(rows / f"{name}.json", (1_000 + age, 1_000 + age))
    assert [row["job_id"] for row in finished_rows(tmp_path, ["a", "b", "c"])] == ["a", "b", "c", "old", "new"]
    assert [row["job_id"] for row in finished_rows(tmp_path)] == ["c", "a", "old", "b", "new"]

