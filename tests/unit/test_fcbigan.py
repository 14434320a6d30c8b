"""FCBiGAN's networks and score maps: any input size, shift-and-stitch, statistics, fusion, patches."""

from __future__ import annotations

from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
from anomalib.engine import Engine

from anomalib_cbigan import Fcbigan, TextureAnomalies
from anomalib_cbigan.models.fcbigan.anomaly_map import ScoreStatistics, fuse_scores, mean_filter, standardize
from anomalib_cbigan.models.fcbigan.loss import critic_loss, encoder_loss, generator_loss
from anomalib_cbigan.models.patch_sampler import sample_patches
from anomalib_cbigan.models.fcbigan.torch_model import FcbiganModel


@pytest.fixture
def tiny() -> FcbiganModel:
    """Stride 4, 16-px patches, few channels: exact checks stay fast."""
    torch.manual_seed(0)
    return FcbiganModel(patch_size=16, latent_dim=4, widths=(4, 6), critic_widths=(3, 5), latent_channels=2,
                        mean_filter_size=5).eval()  # fmt: skip


@pytest.mark.parametrize("size", [(67, 93), (48, 48), (101, 49), (64, 64), (33, 17)])
def test_maps_have_the_input_size_exactly(size: tuple[int, int]) -> None:
    model = FcbiganModel().eval()
    images = torch.rand(2, 3, *size) * 2 - 1
    with torch.no_grad():
        output = model(images)
        _, reconstruction = model.reconstruct(images)
        reconstruction_error, critic_error = model.score_maps(images)
    assert output.anomaly_map.shape == (2, 1, *size)
    assert output.pred_score.shape == (2,)
    assert reconstruction.shape == images.shape
    assert reconstruction_error.shape == critic_error.shape == (2, 1, *size)


def test_a_training_patch_has_one_latent_vector_and_one_critic_prediction() -> None:
    model = FcbiganModel(patch_size=48).train()
    latent, reconstruction = model(torch.rand(5, 3, 48, 48) * 2 - 1)
    assert latent.shape == (5, 64, 1, 1)
    assert reconstruction.shape == (5, 3, 48, 48)
    assert model.critic(reconstruction, latent).shape == (5, 1, 1, 1)
    # An image of 12x12 cells of 8 px gives a map of 48-px windows at stride 8.
    assert model.encoder(torch.rand(1, 3, 96, 96)).shape == (1, 64, 7, 7)


@pytest.mark.numerics
def test_shift_and_stitch_equals_the_dense_evaluation_at_every_shift(tiny: FcbiganModel) -> None:
    critic = tiny.critic
    stride = critic.output_stride
    assert stride == 4
    joint_input = torch.randn(1, 3 + 2, 37, 41)
    with torch.no_grad():
        dense = critic.dense_joint(joint_input)
        assert dense.shape[-2:] == (37 - critic.receptive_field + 1, 41 - critic.receptive_field + 1)
        for dy in range(stride):
            for dx in range(stride):
                strided = critic.joint(joint_input[..., dy:, dx:])
                # the same sums over each window, by dilated and by strided kernels: float32 rounding of values of
                # order 1 (atol: scores near 0), far under any shift error, which moves a value by its own size
                torch.testing.assert_close(dense[..., dy::stride, dx::stride], strided, rtol=1e-5, atol=1e-6)


def test_dense_critic_score_is_centred_and_has_the_input_size(tiny: FcbiganModel) -> None:
    images = torch.rand(1, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        latent = tiny.encoder(images)
        dense = tiny.critic.dense_joint(tiny.critic.joint_input(images, latent))
        score = tiny.critic.dense_score(images, latent)
    before = (tiny.critic.receptive_field - 1) // 2
    assert score.shape[-2:] == (32, 40)
    torch.testing.assert_close(score[..., before : before + dense.shape[-2], before : before + dense.shape[-1]], dense)


def test_statistics_come_from_normal_images_only(tiny: FcbiganModel) -> None:
    normal = torch.rand(3, 3, 32, 32) * 2 - 1
    anomalous = torch.ones(2, 3, 32, 32)  # saturated: very different scores
    mixed = torch.cat([normal[:2], anomalous, normal[2:]])
    labels = torch.tensor([0, 0, 1, 1, 0])
    assert tiny.estimate_score_statistics([(mixed, labels)]) == 3
    from_mixed = (tiny.score_mean.clone(), tiny.score_std.clone(), tiny.score_precision.clone())
    tiny.estimate_score_statistics([(normal, None)])
    for a, b in zip(from_mixed, (tiny.score_mean, tiny.score_std, tiny.score_precision), strict=True):
        torch.testing.assert_close(a, b)
    tiny.estimate_score_statistics([(mixed, None)])  # the anomalies would have changed them
    assert not torch.allclose(from_mixed[0], tiny.score_mean)


def test_validation_estimates_statistics_on_the_training_images(mvtec_root: Path, tmp_path: Path) -> None:
    lightning.seed_everything(0, verbose=False)
    model = Fcbigan(input_size=(64, 64), visualizer=False)
    datamodule = TextureAnomalies(root=mvtec_root, category="brick", eval_batch_size=4)
    Engine(default_root_dir=tmp_path, logger=False, enable_progress_bar=False).validate(model, datamodule=datamodule)
    assert int(model.statistics_batch) == 0
    train_images = torch.stack([item.image for item in datamodule.train_data])
    images, _ = model.pre_processor.transform(train_images, None)
    statistics = ScoreStatistics()
    with torch.no_grad():
        statistics.update(torch.cat(model.model.score_maps(images), dim=1))
    torch.testing.assert_close(model.model.score_mean, statistics.mean())
    torch.testing.assert_close(model.model.score_std, statistics.std())


@pytest.mark.numerics
def test_mahalanobis_fusion_equals_a_hand_computation() -> None:
    generator = torch.Generator().manual_seed(0)
    raw = torch.randn(2, 2, 3, 4, generator=generator)
    raw[:, 1] += 0.7 * raw[:, 0]  # correlated scores
    statistics = ScoreStatistics()
    statistics.update(raw)
    fused = fuse_scores(standardize(raw, statistics.mean(), statistics.std()), "mahalanobis",
                        precision=statistics.precision(ridge=0.0))  # fmt: skip
    pairs = raw.permute(0, 2, 3, 1).reshape(-1, 2).double().numpy()
    mean = pairs.mean(axis=0)
    inverse_covariance = np.linalg.inv(np.cov(pairs.T, bias=True))
    expected = np.sqrt(np.einsum("pi,ij,pj->p", pairs - mean, inverse_covariance, pairs - mean))
    # float32 against a float64 computation: distances of order 1, float32's rounding of a 2x2 inverse and a
    # quadratic form, far under these bounds on any kernel
    np.testing.assert_allclose(fused.permute(0, 2, 3, 1).reshape(-1).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_max_and_linear_fusion() -> None:
    z = torch.tensor([[[[1.0, -3.0]], [[2.0, -1.0]]]])  # (1, 2, 1, 2)
    assert fuse_scores(z, "max").flatten().tolist() == [2.0, -1.0]
    assert fuse_scores(z, "linear", weight=0.25).flatten().tolist() == [1.25, -2.5]
    with pytest.raises(ValueError, match="precision"):
        fuse_scores(z, "mahalanobis")


def test_mean_filter_keeps_size_and_averages() -> None:
    maps = torch.zeros(1, 1, 9, 11)
    maps[0, 0, 4, 5] = 25.0
    filtered = mean_filter(maps, 5)
    assert filtered.shape == maps.shape
    assert filtered[0, 0, 4, 5] == 1.0
    assert filtered[0, 0, 2:7, 3:8].eq(1.0).all() and filtered.sum() == 25.0
    assert torch.equal(mean_filter(torch.full((1, 1, 6, 7), 3.0), 48), torch.full((1, 1, 6, 7), 3.0))


def test_least_squares_losses_by_hand() -> None:
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 1.0])
    assert critic_loss(real, fake) == pytest.approx(0.5 * 0.5 + 0.5 * (0.25 + 1) / 2)
    assert generator_loss(fake) == pytest.approx(0.5 * 0.25 / 2)
    images, reconstruction = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert encoder_loss(real, images, reconstruction, 2.0) == pytest.approx(0.5 * 0.5 + 2.0 * 0.5)


def test_patches_are_crops_of_the_images() -> None:
    images = torch.arange(2 * 3 * 20 * 30, dtype=torch.float32).reshape(2, 3, 20, 30)
    patches = sample_patches(images, 8, per_image=10, augment=False, generator=torch.Generator().manual_seed(0))
    assert patches.shape == (20, 3, 8, 8)
    for patch in patches:
        index = int(patch[0, 0, 0])  # values are unique positions: read back where the patch came from
        image, rest = divmod(index, 3 * 20 * 30)
        top, left = divmod(rest, 30)
        assert torch.equal(patch, images[image, :, top : top + 8, left : left + 8])


def test_augmented_patches_are_flips_and_rotations_of_crops() -> None:
    images = torch.rand(1, 3, 16, 16)
    patches = sample_patches(images, 16, per_image=64, generator=torch.Generator().manual_seed(1))
    variants = [images[0].rot90(k, dims=(-2, -1)) for k in range(4)]
    variants += [v.flip(-1) for v in variants]
    matched = [next(i for i, v in enumerate(variants) if torch.equal(p, v)) for p in patches]
    assert len(set(matched)) > 4  # several of the 8 symmetries occur
    with pytest.raises(ValueError, match="smaller than the 32-px training patch"):
        sample_patches(images, 32, per_image=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": 44}, "multiple of 8"),
        ({"fusion": "mean"}, "fusion"),
        ({"fusion_weight": 1.5}, "fusion_weight"),
        ({"input_size": (32, 32)}, "at least patch_size"),
        ({"patches_per_epoch": 0}, "patches_per_epoch"),
        ({"betas": (0.5,)}, "betas"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fcbigan(**kwargs)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((1, 1, 64, 64), "3 channels, got 1"), ((3, 64, 64), r"shaped \(N, 3, H, W\)")],
)
def test_bad_images_are_named(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FcbiganModel().eval()(torch.rand(shape))


def test_images_smaller_than_a_patch_are_scored_at_their_size_but_not_trained_on() -> None:
    model = FcbiganModel().eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 40, 30) * 2 - 1).anomaly_map.shape == (1, 1, 40, 30)
    with pytest.raises(ValueError, match="needs training images at least as large, got 40x64"):
        model.check_training_images(torch.rand(1, 3, 40, 64))


def test_sub_pixel_layers_start_without_a_checkerboard() -> None:
    # ICNR: at initialisation each sub-pixel up-sampling equals nearest-neighbour up-sampling of a convolution.
    model = FcbiganModel()
    up = model.generator.features[2]  # the first x2 step after the transposed "dense" convolution
    features = torch.randn(1, up[0].in_channels, 5, 7)
    with torch.no_grad():
        out = up(features)
    torch.testing.assert_close(out[..., 0::2, 0::2], out[..., 1::2, 1::2])
    torch.testing.assert_close(out[..., 0::2, 1::2], out[..., 1::2, 0::2])


def test_separable_mean_filter_equals_the_two_dimensional_box() -> None:
    maps = torch.randn(2, 1, 30, 41)
    padded = torch.nn.functional.pad(maps, (3, 4, 3, 4), mode="replicate")
    expected = torch.nn.functional.avg_pool2d(padded, kernel_size=8, stride=1)
    torch.testing.assert_close(mean_filter(maps, 8), expected)
