"""Data: the embedded texture anomaly dataset and checked MVTec AD loading."""

from .datamodules import LocalMVTecAD, TextureAnomalies
from .texture_anomalies import CATEGORIES, DEFECT_TYPES, build_texture_dataset, default_root
from .tree_checks import DatasetError, check_mvtec_tree

__all__ = [
    "CATEGORIES",
    "DEFECT_TYPES",
    "DatasetError",
    "LocalMVTecAD",
    "TextureAnomalies",
    "build_texture_dataset",
    "check_mvtec_tree",
    "default_root",
]
