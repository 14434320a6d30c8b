"""Data: the embedded texture anomaly dataset, checked MVTec AD loading, and in-memory training images."""

from .brightness import StandardizeBrightness
from .datamodules import LocalMVTecAD, TextureAnomalies
from .in_memory import InMemoryDataModule
from .texture_anomalies import CATEGORIES, DEFECT_TYPES, build_texture_dataset, default_root
from .tree_checks import DatasetError, check_mvtec_tree

__all__ = [
    "CATEGORIES",
    "DEFECT_TYPES",
    "DatasetError",
    "InMemoryDataModule",
    "LocalMVTecAD",
    "StandardizeBrightness",
    "TextureAnomalies",
    "build_texture_dataset",
    "check_mvtec_tree",
    "default_root",
]
