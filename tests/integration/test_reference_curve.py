"""The reference-curve script: its power-law fit and projection, on a curve whose answer is known."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def write_job(sweep: Path, job: str, updates: list[int], test: list[float], val: list[float],
              critic_steps: int = 1) -> None:  # fmt: skip
    (sweep / "curves").mkdir(parents=True, exist_ok=True)
    (sweep / "rows").mkdir(exist_ok=True)
    with (sweep / "curves" / f"{job}.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seconds", "updates", "val_image_AUROC", "test_image_AUROC"])
        for count, test_auroc, val_auroc in zip(updates, test, val, strict=True):
            writer.writerow([count / 2, count, val_auroc, test_auroc])
    (sweep / "rows" / f"{job}.json").write_text(json.dumps({"seed": 0, "model.init_args.critic_steps": critic_steps}))


def test_the_fit_recovers_a_power_law_and_projects_both_machines(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    module = benchmark_script("reference_curve")
    # error 0.4 * (updates / 100) ** -0.5, then a transient point before --fit-from that the fit must leave out
    updates = [20, 100, 400, 1600, 6400]
    test = [0.9, 0.6, 0.8, 0.9, 0.95]
    write_job(tmp_path, "long", updates, test, val=[0.5, 0.6, 0.9, 0.8, 0.85])  # validation peaks at 400 updates
    write_job(tmp_path, "other", [10, 20], [0.5, 0.55], [0.5, 0.5], critic_steps=5)
    speed = tmp_path / "speed.csv"
    speed.write_text('model,path,critic steps,protocol batches,"protocol, one GPU, projected (h)"\n'
                     "Cbigan,in-memory channels_last fused,5,3600,9.0\n"
                     "Cbigan,in-memory channels_last fused,1,3600,1.0\n")  # fmt: skip
    (row,) = module.main(["--sweep", str(tmp_path), "--reference", "long", "--baseline", "other", "--speed", str(speed),
                          "--fit-from", "50", "--target", "0.95"])  # fmt: skip
    assert row["exponent b"] == pytest.approx(0.5) and row["R^2"] == pytest.approx(1.0)
    assert row["fitted points"] == 4 and row["updates to 0.95 (projection)"] == 6000  # 6400 to the thousand
    assert row["hours to 0.95 here (projection)"] == pytest.approx(6400 / 2 / 3600, abs=0.05)  # 2 updates a second
    assert row["hours to 0.95 on one GPU (model, projection)"] == pytest.approx(6400 * 2 / 3600, abs=0.05)
    assert row["test-selected (best test point; never chosen with)"] == 0.95
    assert row["test image AUROC, chosen on validation"] == 0.8  # the best validation point's, not the best test
    assert (tmp_path / "reference_curve.md").read_text().count("| long |") == 1
    assert (tmp_path / "plots" / "reference_curve.png").stat().st_size > 0


def test_a_speed_table_of_another_schedule_is_refused(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    write_job(tmp_path, "long", [100, 400], [0.6, 0.8], [0.6, 0.8], critic_steps=1)
    speed = tmp_path / "speed.csv"
    speed.write_text('model,path,critic steps,protocol batches,"protocol, one GPU, projected (h)"\n'
                     "Cbigan,in-memory channels_last fused,5,3600,9.0\n")  # fmt: skip
    with pytest.raises(ValueError, match="--critic-steps 1"):
        benchmark_script("reference_curve").main(["--sweep", str(tmp_path), "--reference", "long",
                                                  "--speed", str(speed), "--fit-from", "0"])  # fmt: skip
