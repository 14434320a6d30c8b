"""The wheel a user installs works alone: away from the checkout, with nothing imported by hand.

The wheel is built from the checkout and installed into a fresh virtual environment in a temporary folder (no
``src/``, no ``tests/``, no shared data). Its dependencies are this environment's (torch alone is several GB):
the fresh environment sees them through a folder of links to every installed distribution but ours, so
``pip install`` of the wheel resolves its requirement ranges against them, offline, and finds nothing of the
checkout. There it runs what a user runs: ``anomalib train --model Cbigan`` on a small folder of images,
``anomalib-cbigan demo --epochs 1``, ``anomalib export`` and ``anomalib-cbigan infer`` of the result, and the
start-up hook must neither warn nor fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OURS = ("anomalib_cbigan", "__editable__", "_anomalib_cbigan")  # the checkout's editable installs and hook


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)}\n{output[-4000:]}"
    assert "could not register" not in output, output[-4000:]  # the start-up hook's warning
    return output


def _dependencies_view(folder: Path) -> Path:
    """Links to everything installed here except this package's own distributions, editable finders and hook."""
    folder.mkdir()
    site_packages = Path(sysconfig.get_paths()["purelib"])
    for entry in site_packages.iterdir():
        if not entry.name.lower().replace("-", "_").startswith(OURS) and entry.suffix != ".pth":
            (folder / entry.name).symlink_to(entry)
    return folder


def _fresh_environment(tmp_path: Path, make_venv: Callable[[Path, Path], Path]) -> tuple[Path, dict[str, str]]:
    """A new venv that sees this one's dependencies (not our package) and has the wheel installed; its bin folder."""
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(REPO)],
         tmp_path, dict(os.environ))  # fmt: skip
    wheel = next(dist.glob("anomalib_cbigan-*.whl"))
    venv = tmp_path / "venv"
    # Without pip and setuptools of its own: the linked ones (the versions torch needs) serve it.
    python = make_venv(venv, _dependencies_view(tmp_path / "dependencies"))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "PYTHONWARNINGS": "ignore::FutureWarning"}
    installed = _run([str(python), "-m", "pip", "install", "--no-index", str(wheel)], tmp_path, env)
    assert "Successfully installed anomalib-cbigan" in installed
    return venv / "bin", env


def test_the_wheel_works_alone_away_from_the_checkout(
    tmp_path: Path, mvtec_root: Path, make_venv: Callable[[Path, Path], Path]
) -> None:
    bin_dir, env = _fresh_environment(tmp_path, make_venv)
    work = tmp_path / "work"  # the user's folder: no src/, no tests/
    work.mkdir()
    where = _run([str(bin_dir / "python"), "-c", "import anomalib_cbigan; print(anomalib_cbigan.__file__)"], work, env)
    assert str(tmp_path / "venv") in where and str(REPO) not in where

    # anomalib's console script is not in the fresh bin folder (its distribution is linked, not installed): run
    # the module the script runs.
    anomalib = [str(bin_dir / "python"), "-m", "anomalib.cli.cli"]
    images = mvtec_root / "brick"
    _run([*anomalib, "train", "--model", "Cbigan", "--model.input_size", "[64, 64]", "--model.patches_per_epoch", "64",
          "--data", "anomalib.data.Folder", "--data.name", "tiny", "--data.root", str(images),
          "--data.normal_dir", "train/good", "--data.abnormal_dir", "test/stain", "--data.normal_test_dir",
          "test/good", "--data.num_workers", "0", "--trainer.max_epochs", "1",
          "--default_root_dir", str(work / "results")], work, env)  # fmt: skip
    checkpoint = next((work / "results").rglob("*.ckpt"))

    demo = _run([str(bin_dir / "anomalib-cbigan"), "demo", "--epochs", "1", "--batches-per-epoch", "10", "--data-root", str(tmp_path / "textures"),
                 "--output", str(work / "demo")], work, env)  # fmt: skip
    assert "image_AUROC" in demo and (work / "demo" / "reconstructions.png").is_file()

    _run([*anomalib, "export", "--model", "Cbigan", "--model.input_size", "[64, 64]",
          "--ckpt_path", str(checkpoint), "--export_type", "openvino", "--input_size", "[192, 192]",
          "--default_root_dir", str(work / "export")],
         work, env)  # fmt: skip
    exported = next((work / "export").rglob("model.xml"))
    _run([str(bin_dir / "anomalib-cbigan"), "infer", "--model", str(exported), "--images", str(images / "test" / "stain"),
          "--output", str(work / "infer")], work, env)  # fmt: skip
    assert (work / "infer" / "scores.csv").is_file()
