"""The training-step variants benchmark runs, and its variants compute the model's own gradients (nothing timed)."""

from __future__ import annotations

import pytest

import csv
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

pytestmark = pytest.mark.numerics


def test_penalty_conv_variants_give_the_models_gradients_and_write_their_table(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    variants = ["channels_last", "NCHW", "penalty conv: weight-gradient kernel", "penalty conv: unfold + matmul"]
    rows = benchmark_script("training_step_variants").main(
        ["--shapes", "64:3", "--repeats", "1", "--variants", *variants, "--output", str(tmp_path / "variants")]
    )
    assert [(row["variant"], row["step"]) for row in rows] == [(v, s) for v in variants for s in ("critic", "E/G")]
    for row in rows:
        assert "error" not in row and row["ms"] > 0
        # Every variant (the double backward rewritten by hand among them) gives the step's float64 gradients to
        # float32 rounding: the worst tensor's ||g - g64|| / max(||g64||, 1 % of the largest), measured on an AMD
        # EPYC under oneDNN's AVX2, AVX512_CORE, AVX512_CORE_BF16 and default kernels at 64 and 128 px, spans
        # 1.9e-6 to 1.9e-5 (the worst: NCHW's AVX-512 critic step). A wrong term of the penalty's second
        # derivative moves a critic gradient by a large fraction of itself.
        assert float(row["grad_error_vs_float64"]) < 1e-4, row
    with (tmp_path / "variants.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
