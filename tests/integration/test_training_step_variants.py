"""The training-step variants benchmark runs, and its variants compute the model's own gradients (nothing timed)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def test_penalty_conv_variants_give_the_models_gradients_and_write_their_table(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        script = BENCHMARKS / "training_step_variants.py"
        spec = importlib.util.spec_from_file_location("training_step_variants", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        variants = ["channels_last", "NCHW", "penalty conv: weight-gradient kernel", "penalty conv: unfold + matmul"]
        rows = module.main(
            ["--shapes", "64:3", "--repeats", "1", "--variants", *variants, "--output", str(tmp_path / "variants")]
        )
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert [(row["variant"], row["step"]) for row in rows] == [(v, s) for v in variants for s in ("critic", "E/G")]
    for row in rows:
        assert "error" not in row and row["ms"] > 0
        # the double backward rewritten by hand: the same weight gradients as PyTorch's, to float32 rounding
        assert float(row["max_rel_grad_diff"]) < 1e-4, row
    with (tmp_path / "variants.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
