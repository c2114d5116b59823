"""Networks that output the reverse-kernel perturbations (App. D; model.md section 10).

Importing this package registers every built-in network kind; see `diffusion.nets.base` for
the contract (forward(xt, g) -> (B, *shape, n_outputs)).
"""

import importlib

from diffusion.nets import mlp  # noqa: F401  (registers rbf, mlp, heartbeat)
from diffusion.nets.base import NetSpec, build_network, register_network, registered_networks

for _name in ("diffusion.nets.conv", "diffusion.nets.unet"):  # the image networks
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise

__all__ = ["NetSpec", "build_network", "register_network", "registered_networks"]
