"""Command-line settings over a sweep config's: parsed as anomalib's dotted options, applied where they fit."""

from __future__ import annotations

import pytest

from anomalib_cbigan_bench.overrides import SMOKE, OverrideError, apply_overrides, parse_overrides

BENCHMARK = {
    "seed": {"grid": [0, 1, 2]},
    "trainer": {"max_epochs": 30},
    "in_memory": True,
    "model": {
        "grid": [
            {"class_path": "Cbigan", "init_args": {"alpha": 0.1}, "trainer": {"max_steps": 1000}},
            {"class_path": "Ganomaly", "in_memory": False},
            {"class_path": "Egbad"},
        ]
    },
    "data": {"class_path": "LocalMVTecAD", "init_args": {"root": "x", "category": {"grid": ["bottle", "screw"]}}},
}


def test_options_are_read_as_yaml_values_with_either_spelling() -> None:
    tokens = ["--trainer.max_steps", "100", "--model.init_args.lr=1e-3", "--trainer.max_time", "null",
              "--seed", "[0, 1]", "--data.init_args.category", "bottle"]  # fmt: skip
    assert parse_overrides(tokens) == {
        "trainer.max_steps": 100,
        "model.init_args.lr": 0.001,
        "trainer.max_time": None,
        "seed": [0, 1],
        "data.init_args.category": "bottle",
    }


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["--trainer.max_steps"], "needs a value"),
        (["max_steps", "3"], "expected an option"),
        (["--optimizer.lr", "3"], "a sweep takes"),
        (["--model.lr", "3"], "a sweep takes"),
        (["--trainer.", "3"], "a sweep takes"),
    ],
)
def test_malformed_options_are_refused_with_the_reason(tokens: list[str], message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        parse_overrides(tokens)


def test_overrides_win_everywhere_they_apply_and_leave_the_config_untouched() -> None:
    result = apply_overrides(BENCHMARK, {"trainer.max_steps": 5, "model.init_args.alpha": 0.5,
                                         "data.init_args.category": "bottle", "in_memory.batches_per_epoch": 7,
                                         "seed": 3})  # fmt: skip
    cbigan, ganomaly, egbad = result["model"]["grid"]
    assert result["trainer"] == {"max_epochs": 30, "max_steps": 5}
    assert cbigan["trainer"] == {"max_steps": 5}  # the model's own trainer section loses to the command line
    assert cbigan["init_args"]["alpha"] == 0.5
    assert "init_args" not in egbad and "init_args" not in ganomaly  # neither takes alpha
    assert result["data"]["init_args"]["category"] == "bottle"
    assert result["in_memory"] == {"batches_per_epoch": 7}
    assert ganomaly["in_memory"] is False  # an opted-out model stays out
    assert result["seed"] == 3
    assert BENCHMARK["model"]["grid"][0]["init_args"] == {"alpha": 0.1}
    assert apply_overrides(BENCHMARK, {"seed": [4, 5]})["seed"] == {"grid": [4, 5]}


def test_an_argument_no_model_takes_is_an_error_except_in_smoke_mode() -> None:
    with pytest.raises(OverrideError, match="no model of this sweep takes 'patch_size'"):
        apply_overrides(BENCHMARK, {"model.init_args.patch_size": 8})
    smoke = apply_overrides(BENCHMARK, SMOKE, strict=False)
    cbigan, ganomaly, _ = smoke["model"]["grid"]
    assert cbigan["init_args"]["batch_size"] == ganomaly["init_args"]["batch_size"] == 4
    assert cbigan["init_args"]["patches_per_epoch"] == 16  # noqa: PLR2004  (lowered from its default 2,000)
    assert cbigan["trainer"]["max_steps"] == smoke["trainer"]["max_steps"] == 2


def test_smoke_mode_lowers_patches_per_epoch_and_leaves_it_off_where_it_is_off() -> None:
    benchmark = {**BENCHMARK, "model": {"grid": [
        {"class_path": "Fcbigan"},  # default 3,000 patches an epoch
        {"class_path": "Cbigan", "init_args": {"patches_per_epoch": 2000}},
        {"class_path": "Cbigan", "init_args": {"patches_per_epoch": 8}},
        {"class_path": "Egbad", "init_args": {"patches_per_epoch": 0}},  # whole images
        {"class_path": "Egbad"},  # default 2,000
    ]}}  # fmt: skip
    fcbigan, many, few, whole, default = apply_overrides(benchmark, SMOKE, strict=False)["model"]["grid"]
    assert fcbigan["init_args"]["patches_per_epoch"] == many["init_args"]["patches_per_epoch"] == 16  # noqa: PLR2004
    assert default["init_args"]["patches_per_epoch"] == 16  # noqa: PLR2004
    assert few["init_args"]["patches_per_epoch"] == 8  # noqa: PLR2004
    assert whole["init_args"]["patches_per_epoch"] == 0
