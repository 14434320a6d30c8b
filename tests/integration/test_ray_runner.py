"""Sweeps as Ray tasks on a local Ray instance: the serial runner's rows, a failure reported, a re-run, a lost worker."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from argparse import Namespace
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import ray
import yaml
from test_sweep import sweep_config

from anomalib_cbigan_bench import Sweep
from anomalib_cbigan_bench.ray_runner import LOCAL_OBJECT_STORE_BYTES

ENVIRONMENT_ROOT = "${MVTEC_ROOT}"  # each worker reads it from its environment
# What a job measured (not how long it took, nor where it ran).
METRICS = ("image_AUROC", "image_AUROC_raw", "pixel_AUROC", "image_F1Score", "trained_steps", "test_images")


def test_run_sweep_with_the_ray_runner_starts_a_local_instance_and_stops_it(
    tmp_path: Path, mvtec_root: Path, fast_args_by_name: Callable[[str], dict], monkeypatch: pytest.MonkeyPatch,
    benchmark_script: Callable[[str], ModuleType],
) -> None:
    monkeypatch.setenv("MVTEC_ROOT", str(mvtec_root))  # the local instance's workers start with this environment
    config = sweep_config(tmp_path / "sweep.yaml", Path(ENVIRONMENT_ROOT),
                          [{"class_path": "Cbigan", "init_args": fast_args_by_name("Cbigan")}])  # fmt: skip
    assert not ray.is_initialized()

    status = benchmark_script("run_sweep").main(["--config", str(config), "--output", str(tmp_path / "out"),
                                                 "--runner", "ray", "--no-report"])  # fmt: skip

    assert status == 0
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 1
    assert not ray.is_initialized(), "the instance the sweep started is stopped"


@pytest.fixture(scope="module")
def local_ray(mvtec_root: Path) -> Iterator[None]:
    """One local instance for the module's sweeps (a runner that finds Ray running leaves it running), its workers
    started with ``MVTEC_ROOT`` naming the small brick tree (the configs say ``${MVTEC_ROOT}``)."""
    before = os.environ.get("MVTEC_ROOT")
    os.environ["MVTEC_ROOT"] = str(mvtec_root)
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        yield
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("MVTEC_ROOT")
        else:
            os.environ["MVTEC_ROOT"] = before


def two_models_two_seeds(tmp_path: Path, args_for: Callable[[str], dict], *extra: dict) -> Path:
    models = [{"class_path": name, "init_args": args_for(name)} for name in ("Cbigan", "Egbad")]
    config = sweep_config(tmp_path / "sweep.yaml", Path(ENVIRONMENT_ROOT), [*models, *extra])
    settings = yaml.safe_load(config.read_text())
    settings["benchmark"]["seed"] = {"grid": [0, 1]}
    config.write_text(yaml.safe_dump(settings))
    return config


def test_ray_tasks_give_the_serial_runners_rows_report_a_failure_and_resume(
    tmp_path: Path, fast_args_by_name: Callable[[str], dict], capfd: pytest.CaptureFixture[str],
    local_ray: None,
) -> None:
    # FCBiGAN refuses to train on images smaller than its patch: a job that fails at fit time.
    failing = {"class_path": "Fcbigan", "init_args": {**fast_args_by_name("Fcbigan"), "input_size": None,
                                                      "patch_size": 256}}  # fmt: skip
    config = two_models_two_seeds(tmp_path, fast_args_by_name, failing)

    serial = Sweep(output_dir=tmp_path / "serial").run(Namespace(config=config))
    sweep = Sweep(output_dir=tmp_path / "ray", runner="ray")
    on_ray = sweep.run(Namespace(config=config))

    assert len(on_ray) == 4
    assert sorted(on_ray["job_id"]) == sorted(serial["job_id"]), "the same jobs, named the same"
    pd.testing.assert_frame_equal(
        on_ray.set_index("job_id").sort_index()[list(METRICS)], serial.set_index("job_id").sort_index()[list(METRICS)]
    )
    for folder in ("scores", "figures"):
        assert len(list((tmp_path / "ray" / folder).iterdir())) == 4, folder
    assert len(sweep.failed_jobs) == 2, "the failing model's job on each seed"
    for name in sweep.failed_jobs:
        failure = (tmp_path / "ray" / "failed" / f"{name}.txt").read_text()
        assert "patch" in failure.lower() and json.loads(failure.splitlines()[0])["model.class_path"] == "Fcbigan"

    # A re-run submits only the failed jobs again.
    capfd.readouterr()
    rows = {path: path.stat().st_mtime_ns for path in (tmp_path / "ray" / "rows").glob("*.json")}
    rerun = Sweep(output_dir=tmp_path / "ray", runner="ray").run(Namespace(config=config))
    printed = capfd.readouterr().out
    assert printed.count("finished in an earlier run, skipped") == 4
    assert printed.count(": submitted") == 2
    assert len(rerun) == 4
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in rows.items())


def _processes_titled(title: str) -> list[int]:
    """The pids of this user's processes whose command line begins with ``title`` (Ray names a busy worker
    ``ray::<task function>``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title.encode()):
                pids.append(int(entry.name))
        except OSError:  # the process ended meanwhile
            continue
    return pids


def test_a_job_whose_worker_is_killed_is_retried(
    tmp_path: Path, fast_args_by_name: Callable[[str], dict], local_ray: None
) -> None:
    config = sweep_config(tmp_path / "sweep.yaml", Path(ENVIRONMENT_ROOT),
                          [{"class_path": "Cbigan", "init_args": fast_args_by_name("Cbigan")}])  # fmt: skip
    sweep = Sweep(output_dir=tmp_path / "out", runner="ray")
    outcome: dict[str, pd.DataFrame] = {}
    driver = threading.Thread(target=lambda: outcome.setdefault("rows", sweep.run(Namespace(config=config))))
    driver.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and driver.is_alive() and time.monotonic() < deadline:
        busy = _processes_titled("ray::run_sweep_job")
        if busy:
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    driver.join(timeout=300)

    assert killed is not None, "the job's worker was found running it"
    assert not driver.is_alive()
    assert len(outcome["rows"]) == 1, "the job ran again on another worker and finished"
    assert sweep.failed_jobs == []
