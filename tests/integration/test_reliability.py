"""Reliability of training, for every registered model: divergence, a killed fit resumed, determinism, DDP."""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from anomalib.data import PredictDataset
from lightning import Callback, LightningModule, Trainer

from anomalib_cbigan import list_models, model_class
from anomalib_cbigan.models.gan_module import RNG_STATES

SCRIPTS = Path(__file__).parent / "scripts"
_spec = importlib.util.spec_from_file_location("resumable_fit", SCRIPTS / "resumable_fit.py")
resumable_fit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resumable_fit)


def slow_if_subclass(name: str, *values: object) -> object:
    """``pytest.param`` of ``(name, *values)``, marked slow where the model subclasses another registered model
    (EGBAD of CBiGAN, SAGAN of Skip-GANomaly): its training step, checkpointing and DDP are its parent's, which
    the default suite runs; these process-level tests each start Python processes."""
    cls = model_class(name)
    parents = [other for other in list_models() if other != name and issubclass(cls, model_class(other))]
    return pytest.param(name, *values, id=name, marks=[pytest.mark.slow] if parents else [])


@pytest.fixture(scope="module")
def test_images(mvtec_root: Path) -> torch.Tensor:
    dataset = PredictDataset(mvtec_root / "brick" / "test" / "hole")
    return torch.stack([dataset[index].image for index in range(len(dataset))])


def outcome(model: LightningModule, images: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Everything a fit leaves in the model (weights, buffers, statistics) and its scores of test images."""
    model.eval()
    with torch.no_grad():
        scores = model(images).pred_score  # anomalib's whole path: pre-processing, the network, normalisation
    return {key: value.clone() for key, value in model.state_dict().items()}, scores


def fit(name: str, root: Path, work_dir: Path, ckpt_path: Path | None = None, *, in_memory: bool = False) -> LightningModule:
    # build() turns deterministic algorithms on for the whole process: restore the flag so later tests run as users do.
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        model, datamodule, engine = resumable_fit.build(name, root, work_dir, in_memory=in_memory)
        engine.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    return model


def assert_same(first: tuple, second: tuple, *, atol: float) -> None:
    for key, value in first[0].items():
        torch.testing.assert_close(second[0][key], value, rtol=0, atol=atol, equal_nan=True, msg=key)
    torch.testing.assert_close(second[1], first[1], rtol=0, atol=atol)


@pytest.mark.parametrize(
    ("name", "in_memory"),
    [slow_if_subclass(name, False) for name in list_models()]
    + [pytest.param("Cbigan", True, id="Cbigan-in_memory")],  # in memory: the sampler's draws resume too
)
def test_a_fit_killed_mid_epoch_resumes_to_exactly_the_uninterrupted_result(
    name: str, in_memory: bool, mvtec_root: Path, tmp_path: Path, test_images: torch.Tensor
) -> None:
    """Also the determinism test: two runs with seed 42 and deterministic algorithms, one of them killed and
    resumed in another process, end with identical weights, optimiser states' effects, statistics and scores."""
    uninterrupted = outcome(fit(name, mvtec_root, tmp_path / "uninterrupted", in_memory=in_memory), test_images)

    killed = tmp_path / "killed"
    last_epoch = resumable_fit.EPOCHS - 1
    command = [sys.executable, str(SCRIPTS / "resumable_fit.py"), name, str(mvtec_root), str(killed), str(last_epoch),
               "1", *(["in_memory"] if in_memory else [])]  # fmt: skip
    result = subprocess.run(  # dies by SIGKILL at the second batch of the last epoch
        command, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    (checkpoint_path,) = killed.rglob("*.ckpt")
    checkpoint = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
    assert checkpoint["epoch"] == last_epoch - 1  # the end-of-epoch checkpoint before the kill
    assert len(checkpoint["optimizer_states"]) == 2  # E/G and critic, each with its Adam moments
    assert all(state["state"] for state in checkpoint["optimizer_states"])
    assert int(checkpoint["state_dict"]["batches_seen"]) == 4 * last_epoch
    assert RNG_STATES in checkpoint

    resumed = outcome(fit(name, mvtec_root, killed, ckpt_path=checkpoint_path, in_memory=in_memory), test_images)
    assert_same(uninterrupted, resumed, atol=0)


class PoisonCritic(Callback):
    """Put a NaN into the critic's first weight at the start of epoch 1: the next loss is NaN."""

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object, batch_idx: int) -> None:
        del batch
        if trainer.current_epoch == 1 and batch_idx == 0:
            with torch.no_grad():
                weight = next(pl_module.model.critic.parameters())
                weight[(0,) * weight.ndim] = float("nan")  # indexed: a channels_last weight has no 1-D view


@pytest.mark.parametrize("name", list_models())
def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(
    name: str, mvtec_root: Path, tmp_path: Path
) -> None:
    model, datamodule, engine = resumable_fit.build(name, mvtec_root, tmp_path, callbacks=[PoisonCritic()])
    with pytest.raises(FloatingPointError) as raised:
        engine.fit(model, datamodule=datamodule)
    message = str(raised.value)
    assert re.search(rf"{name} diverged: \w+_loss is nan at training batch 4 \(epoch 1\)\. Likely causes: ", message)
    assert "lr=" in message
    kept = Path(re.search(r"The last checkpoint, (.+\.ckpt), is kept", message).group(1))
    restored = model_class(name).load_from_checkpoint(kept)
    weights = [value for key, value in restored.model.state_dict().items() if value.is_floating_point()]
    assert weights and all(torch.isfinite(value).all() for value in weights)
    assert int(restored.batches_seen) == 4  # the epoch before the divergence


def test_an_exploding_critic_is_a_divergence_too() -> None:
    from anomalib_cbigan.models.gan_training import check_loss

    exploded = r"critic_loss is 30000000.0 at training batch 12 \(epoch 2\), beyond \+-1e\+06 \(an exploding critic\)"
    with pytest.raises(FloatingPointError, match=exploded):
        check_loss(torch.tensor(3e7), "critic_loss", model="Cbigan", step=12, epoch=2, causes="lr")


@pytest.mark.parametrize("name", [slow_if_subclass(name) for name in list_models()])
def test_ddp_on_two_cpu_processes_keeps_the_ranks_identical(name: str, mvtec_root: Path, tmp_path: Path) -> None:
    # One process pair per model: several fits in one DDP script once lost a rank in CI (gloo "connection closed").
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "ddp_fit.py"), name, str(mvtec_root), str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"{name}_rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [rank["world_size"] for rank in ranks] == [2, 2]
    assert ranks[0]["batches_seen"] == ranks[1]["batches_seen"] > 0
    for key, value in ranks[0]["parameters"].items():
        assert ranks[1]["parameters"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    # ...and they trained: the weights moved away from the (seeded, shared) initial ones.
    assert ranks[0]["norm"] != pytest.approx(ranks[0]["initial_norm"], rel=1e-9)
