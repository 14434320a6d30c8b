"""Constructor arguments: paper defaults, validation, EGBAD as alpha = 0."""

from __future__ import annotations

import pytest

from anomalib_cbigan import Cbigan, Egbad


def test_paper_defaults() -> None:
    model = Cbigan()
    assert model.hparams["latent_dim"] == 64
    assert model.hparams["lambda_"] == 0.1
    assert model.hparams["lr"] == 1e-4
    assert model.alpha == 1e-4
    assert model.critic_loss.gp_weight == 10.0
    assert model.critic_steps == 5
    assert model.input_size == (128, 128)


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
    ],
)
def test_bad_values_are_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Cbigan(**kwargs)
