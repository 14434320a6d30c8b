"""Constructor arguments: the paper's settings (Model.paper()), the CPU defaults, validation, EGBAD as alpha = 0."""

from __future__ import annotations

import pytest

from anomalib_cbigan import Cbigan, Egbad


def test_paper_defaults() -> None:
    model = Cbigan.paper()
    assert model.hparams["latent_dim"] == 64
    assert model.hparams["lambda_"] == 0.1
    assert model.hparams["lr"] == 1e-4
    assert model.alpha == 1e-4
    assert model.critic_loss.gp_weight == 10.0
    assert model.critic_steps == 5
    assert model.input_size == (128, 128)


def test_official_code_defaults() -> None:
    """Where the official code (checked by running it, benchmarks/reference_parity.py) and the paper are silent
    or agree: Keras' initialisation, its penalty pairing, Keras' Adam epsilon; no weight average unless asked."""
    for model in (Cbigan.paper(weight_average_decay=0.0), Egbad.paper(weight_average_decay=0.0)):
        assert model.hparams["init"] == "glorot_uniform"
        assert model.critic_loss.penalty_pairing == "official"
        assert all(group["eps"] == 1e-7 for opt in model.configure_optimizers() for group in opt.param_groups)
        assert model.model.average is None
    averaged = Egbad(weight_average_decay=0.999, weight_average_every=10)
    assert averaged.model.average is not None
    assert averaged.hparams["weight_average_decay"] == 0.999


def test_cpu_defaults_are_the_texture_protocol_with_model_drawn_patches() -> None:
    """The constructor defaults chosen in benchmarks/sweeps/cpu_defaults.yaml (docs/benchmarks.md); the official
    code's choices where the sweep changed nothing (initialisation, penalty, Adam's epsilon)."""
    for model in (Cbigan(), Egbad()):
        assert model.input_size is None and model.model.input_size == (64, 64)  # tiles: the pre-processor keeps the size
        assert model.model.tiler is not None and model.patches_per_epoch == 2000  # noqa: PLR2004
        assert (model.critic_steps, model.lr, model.weight_average_decay) == (5, 1e-3, 0.995)
        assert model.hparams["init"] == "glorot_uniform" and model.critic_loss.penalty_pairing == "official"
    assert Cbigan().alpha == 0.1  # noqa: PLR2004
    assert Cbigan.paper().model.tiler is None and Cbigan.paper().input_size == (128, 128)


def test_egbad_is_alpha_zero_and_takes_no_alpha() -> None:
    model = Egbad(input_size=(64, 64))
    assert model.alpha == 0.0
    assert model.generator_loss.alpha == 0.0
    assert "alpha" not in model.hparams
    with pytest.raises(TypeError):
        Egbad(alpha=0.5)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 1.5}, r"alpha must be in \[0.0, 1.0\], got 1.5"),
        ({"alpha": -0.1}, "alpha must be in"),
        ({"alpha": float("nan")}, "alpha must be in"),
        ({"lambda_": 2.0}, "lambda_ must be in"),
        ({"lr": 0.0}, "lr has an invalid value"),
        ({"critic_steps": 0}, "critic_steps has an invalid value"),
        ({"gp_weight": -1.0}, "gp_weight has an invalid value"),
        ({"generator_betas": (0.0, 1.0)}, "generator_betas must be in"),
        ({"critic_betas": (0.5,)}, "two numbers"),
        ({"feature_layer": "last"}, "feature_layer must be one of"),
        ({"input_size": (100, 100)}, "cannot take input size 100x100"),
        ({"batch_size": 0}, "batch_size has an invalid value"),
        ({"init": "xavier"}, "init must be one of"),
        ({"penalty_pairing": "crossed"}, "penalty_pairing must be one of"),
        ({"weight_average_decay": 1.0}, "weight_average_decay has an invalid value"),
        ({"weight_average_every": 0}, "weight_average_every has an invalid value"),
    ],
)
def test_bad_values_are_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Cbigan(**kwargs)
