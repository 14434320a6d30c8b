"""Which anomalib image models train and test with no download (the default comparison set is drawn from these).

Each model is built with its defaults and run through one training step and one test batch on the embedded
texture data, in its own subprocess with downloads off (``HF_HUB_OFFLINE=1``; this machine has no internet
anyway). A model that fetches pretrained weights or an extra dataset fails at construction or at fit start,
and the first line of its error says what it wanted.

Usage:
    python benchmarks/model_availability.py [--timeout 600] [--models Draem Ganomaly]

Writes ``benchmarks/results/model_availability.csv`` and ``.md`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from anomalib_cbigan.reports import write_tables

NO_DTD = Path(__file__).resolve().parent / "sweeps" / "no_dtd"
# Settings that avoid a model's download, tried when its defaults fail: DRAEM downloads the DTD textures as its
# anomaly source unless `dtd_dir` exists; an empty folder leaves it Perlin noise.
OFFLINE_SETTINGS = {"Draem": {"dtd_dir": str(NO_DTD)}}
# Not image anomaly detectors on MVTec-style folders: video (AiVad, Fuvas) or a paid API (VlmAd).
NOT_IMAGE_MODELS = {"AiVad": "video model", "Fuvas": "video model", "VlmAd": "needs a vision-language API"}

PROBE = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from anomalib.engine import Engine
from anomalib.models import get_model
from anomalib_cbigan.data import TextureAnomalies
model = get_model(sys.argv[1], **json.loads(sys.argv[3]))
engine = Engine(max_steps=1, limit_train_batches=1, limit_val_batches=1, limit_test_batches=1,
                logger=False, enable_progress_bar=False, default_root_dir=sys.argv[2])
data = TextureAnomalies(category="brick", train_batch_size=1, eval_batch_size=2)
engine.fit(model, datamodule=data)
engine.test(model, datamodule=data, verbose=False)
"""


def image_model_names() -> list[str]:
    """anomalib's registered model names, this package's and non-image ones left out."""
    import anomalib.models

    from anomalib_cbigan.registry import list_models

    ours = set(list_models())
    return [name for name in anomalib.models.__all__ if _is_model(anomalib.models, name) and name not in ours]


def _is_model(module: object, name: str) -> bool:
    from anomalib.models import AnomalibModule

    value = getattr(module, name, None)
    return isinstance(value, type) and issubclass(value, AnomalibModule) and value is not AnomalibModule


def probe(name: str, timeout: float, work_dir: Path) -> dict:
    """The verdict for one model with its defaults, or else with its settings from ``OFFLINE_SETTINGS``."""
    row = probe_with(name, timeout, work_dir, {})
    if not row["offline"] and name in OFFLINE_SETTINGS:
        settings = OFFLINE_SETTINGS[name]
        retry = probe_with(name, timeout, work_dir, settings)
        if retry["offline"]:
            retry["reason"] = f"runs offline only with {settings} (defaults: {row['reason']})"
        return retry
    return row


def probe_with(name: str, timeout: float, work_dir: Path, settings: dict) -> dict:
    """Run the one-step probe for one model (in its own folder, so nothing it writes is reused); the verdict."""
    if name in NOT_IMAGE_MODELS:
        return {"model": name, "offline": False, "seconds": 0.0, "reason": NOT_IMAGE_MODELS[name]}
    folder = (work_dir / name / ("custom" if settings else "defaults")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    try:
        result = subprocess.run(  # our own interpreter and script
            [sys.executable, "-c", PROBE, name, str(folder), json.dumps(settings)],
            cwd=folder,  # a failed download leaves an empty ./datasets/dtd behind, which a later run would take
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"model": name, "offline": False, "seconds": timeout, "reason": f"no result within {timeout:.0f} s"}
    seconds = time.perf_counter() - start
    if result.returncode == 0:
        return {"model": name, "offline": True, "seconds": round(seconds, 1), "reason": ""}
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    error = (errors or lines or ["exit status " + str(result.returncode)])[-1]
    return {"model": name, "offline": False, "seconds": round(seconds, 1), "reason": _why(error)}


def _why(error: str) -> str:
    """The error's last line, named by what the model tried to fetch."""
    if "huggingface_hub" in error or "HF_HUB_OFFLINE" in error:
        return "downloads pretrained weights from the Hugging Face Hub (" + error.split(":")[0] + ")"
    if "URLError" in error or "urlopen" in error or "Name or service not known" in error:
        return "downloads weights or data from the internet (" + error[:80] + ")"
    return error[:160]


def main() -> None:
    """Probe every (or the chosen) anomalib image model and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", help="default: every anomalib model")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per model")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/model_availability"))
    parser.add_argument("--work-dir", type=Path, default=Path("results/model_availability"))
    args = parser.parse_args()
    rows = []
    names = args.models or image_model_names()
    for index, name in enumerate(names, 1):
        row = probe(name, args.timeout, args.work_dir)
        rows.append(row)
        verdict = "runs offline" if row["offline"] else f"excluded: {row['reason']}"
        print(f"[{index}/{len(names)}] {name}: {verdict} ({row['seconds']} s)", flush=True)
        write_tables(rows, args.output)


if __name__ == "__main__":
    main()
