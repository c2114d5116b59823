"""Data sets (Sohl-Dickstein et al. 2015, section 3; model.md section 11).

Importing this package registers every built-in data set. Builders live in their own modules
and register under a name from `diffusion.config.DATASET_NAMES` (see `diffusion.data.base`).
"""

import importlib

from diffusion.data import toy  # noqa: F401  (registers swissroll, heartbeat, vector)
from diffusion.data.base import (
    DataBundle,
    Scaler,
    build_dataset,
    fit_scaler,
    register_dataset,
    registered_datasets,
)

# Image data sets are optional modules (diffusion/data/images.py, image_*.py).
for _name in ("diffusion.data.images", "diffusion.data.photos"):
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise

__all__ = [
    "DataBundle",
    "Scaler",
    "build_dataset",
    "fit_scaler",
    "register_dataset",
    "registered_datasets",
]
