"""FCBiGAN's score maps after the networks: z-score statistics, fusion, mean filter.

The thesis z-scores the reconstruction error ``L_R`` and the critic score ``L_D`` with
statistics of normal data, fuses them (``Max`` in its results; also a linear combination and
the Mahalanobis distance under the normal data's covariance), and smooths with a 48x48
mean filter.

Example:
    >>> import torch
    >>> from anomalib_cbigan.models.fcbigan.anomaly_map import fuse_scores
    >>> z = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1)
    >>> fuse_scores(z, "max").flatten().tolist()
    [1.0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FUSIONS = ("max", "linear", "mahalanobis")


def standardize(maps: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """z-score each channel of (N, C, H, W) maps with per-channel ``mean`` and ``std``."""
    return (maps - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def fuse_scores(
    z_scores: torch.Tensor,
    fusion: str,
    weight: float = 0.5,
    precision: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fuse z-scored ``(L_R, L_D)`` maps (N, 2, H, W) into one (N, 1, H, W) map.

    Args:
        z_scores (torch.Tensor): Channel 0 ``L_R``, channel 1 ``L_D``, both z-scored.
        fusion (str): ``"max"``: the larger of the two; ``"linear"``:
            ``(1 - weight) * L_R + weight * L_D`` (thesis eq. 7); ``"mahalanobis"``:
            ``sqrt(z^T P z)`` with ``P`` the inverse correlation matrix of the z-scored normal
            data (= the Mahalanobis distance of the raw pair under the normal covariance).
        weight (float): ``L_D``'s weight in the linear fusion.
        precision (torch.Tensor | None): ``P`` (2x2), required for ``"mahalanobis"``.
    """
    if fusion == "max":
        return z_scores.amax(dim=1, keepdim=True)
    if fusion == "linear":
        return (1 - weight) * z_scores[:, :1] + weight * z_scores[:, 1:2]
    if fusion == "mahalanobis":
        if precision is None:
            msg = "the Mahalanobis fusion needs the precision matrix of the normal scores"
            raise ValueError(msg)
        squared = torch.einsum("nihw,ij,njhw->nhw", z_scores, precision.to(z_scores.dtype), z_scores)
        return squared.clamp_min(0).sqrt().unsqueeze(1)
    msg = f"fusion must be one of {FUSIONS}, got {fusion!r}"
    raise ValueError(msg)


def mean_filter(maps: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` x ``size`` box filter with replicated borders; output has the input's H x W.

    Applied as a row pass then a column pass (the box is separable): ``2 * size`` additions
    per pixel instead of ``size**2``, which made the 2-D pool the slowest stage at 1024 px.
    """
    if size <= 1:
        return maps
    before, after = (size - 1) // 2, size // 2
    padded = F.pad(maps, (before, after, before, after), mode="replicate")
    rows = F.avg_pool2d(padded, kernel_size=(1, size), stride=1)
    return F.avg_pool2d(rows, kernel_size=(size, 1), stride=1)


class ScoreStatistics:
    """Running mean, standard deviation and correlation of per-pixel ``(L_R, L_D)`` pairs.

    Accumulates in float64 so millions of pixels per image do not lose precision.

    Example:
        >>> import torch
        >>> stats = ScoreStatistics()
        >>> stats.update(torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]]))
        >>> stats.mean().tolist(), stats.std().tolist()
        ([2.0, 2.0], [1.0, 0.0])
    """

    def __init__(self) -> None:
        self.count = 0
        self.total = torch.zeros(2, dtype=torch.float64)
        self.products = torch.zeros(2, 2, dtype=torch.float64)

    def update(self, maps: torch.Tensor) -> None:
        """Add the pixels of (N, 2, H, W) maps."""
        pairs = maps.detach().to(torch.float64).transpose(0, 1).reshape(2, -1)
        self.count += pairs.shape[1]
        self.total += pairs.sum(dim=1).cpu()
        self.products += (pairs @ pairs.T).cpu()

    def _covariance(self) -> torch.Tensor:
        if self.count == 0:
            msg = "no normal pixels were seen: the score statistics need at least one normal image"
            raise ValueError(msg)
        mean = self.total / self.count
        return self.products / self.count - torch.outer(mean, mean)

    def mean(self) -> torch.Tensor:
        """Per-score mean."""
        self._covariance()
        return (self.total / self.count).float()

    def std(self) -> torch.Tensor:
        """Per-score (population) standard deviation."""
        return self._covariance().diagonal().clamp_min(0).sqrt().float()

    def precision(self, ridge: float = 1e-6) -> torch.Tensor:
        """Inverse correlation matrix of the z-scored pair (a small ridge keeps it invertible)."""
        covariance = self._covariance()
        std = covariance.diagonal().clamp_min(1e-12).sqrt()
        correlation = covariance / torch.outer(std, std)
        return torch.linalg.inv(correlation + ridge * torch.eye(2, dtype=torch.float64)).float()
