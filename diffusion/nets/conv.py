"""The multi-scale convolutional network for images (Sohl-Dickstein et al. 2015, App. D.2.2,
figure D.1; model.md section 10).

Per example x^t (C, H, W):
1. Multi-scale convolution layers (`conv_layers` of them): the input is mean-pooled to
   scales 1, 2, 4, ..., convolved at each scale, upsampled back (nearest), the scales are
   summed, then softplus. Coarse scales give every pixel a wide receptive field cheaply.
2. An optional fully connected pathway in parallel (the paper's CIFAR-10 network; MNIST
   used the dense pathway alone): the flattened image through `dense_layers` tanh layers
   of `dense_hidden` units, then `dense_out` features per pixel.
3. Per-pixel dense (1 x 1) tanh layers (`upper`) on the concatenated features.
4. The temporal readout (App. D.2.1): per pixel and channel, n_outputs x J coefficients
   y, contracted with the basis weights g_j(t): z = sum_j g_j y_j.

Output z: (B, C, H, W, n_outputs), the contract of `diffusion.nets.base`. The readout layer
starts at zero, so an untrained network gives the forward kernel's form.

Options (NetworkConfig.options; schema: diffusion.config_options.ConvOptions) and defaults,
after the official code (4 conv layers of 20 channels, dense 500, 2 upper layers of 20):
conv_layers=4, conv_channels=20, kernel=3, scales=0 (auto: pool while the coarse side is >=
4 pixels), dense_hidden=0 (0 = no fully connected pathway), dense_layers=2, dense_out=2,
upper=[20, 20].
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from diffusion.config import ConfigError, NetworkConfig
from diffusion.config_options import ConvOptions
from diffusion.nets.base import NetSpec, register_network

DEFAULTS: dict[str, Any] = dataclasses.asdict(ConvOptions())  # the schema's defaults


def auto_scales(height: int, width: int, min_side: int = 4) -> int:
    """Number of scales 1, 2, 4, ... such that the coarsest side is still >= min_side."""
    n = 1
    while min(height, width) / 2**n >= min_side:
        n += 1
    return n


class MultiScaleConv(nn.Module):
    """One multi-scale convolution layer: sum over scales s of up(conv_s(pool_s(x))), softplus.

    x: (B, c_in, H, W) -> (B, c_out, H, W).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, n_scales: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2) for _ in range(n_scales)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        out = 0
        for k, conv in enumerate(self.convs):
            s = 2**k
            xs = x if s == 1 else F.adaptive_avg_pool2d(x, (math.ceil(h / s), math.ceil(w / s)))
            ys = conv(xs)
            out = out + (ys if s == 1 else F.interpolate(ys, size=(h, w), mode="nearest"))
        return F.softplus(out / len(self.convs))


class MultiScaleConvNet(nn.Module):
    """Multi-scale convolutional network with temporal readout; see the module docstring.

    forward(xt (B, C, H, W), g (B, J)) -> z (B, C, H, W, n_outputs).
    """

    def __init__(self, spec: NetSpec, **opts: Any) -> None:
        super().__init__()
        o = {**DEFAULTS, **opts}
        if len(spec.shape) != 3:
            raise ConfigError(
                "network.kind", f"conv needs images (C, H, W), got shape {spec.shape}"
            )
        c, h, w = spec.shape
        self.shape, self.n_outputs, self.J = (c, h, w), spec.n_outputs, spec.J
        n_scales = int(o["scales"]) or auto_scales(h, w)
        layers, c_in = [], c
        for _ in range(int(o["conv_layers"])):
            layers.append(MultiScaleConv(c_in, int(o["conv_channels"]), int(o["kernel"]), n_scales))
            c_in = int(o["conv_channels"])
        self.conv = nn.Sequential(*layers)
        self.dense: nn.Module | None = None
        self.dense_out = int(o["dense_out"])
        if int(o["dense_hidden"]) > 0:
            mods: list[nn.Module] = [nn.Flatten()]
            d_in = c * h * w
            for _ in range(int(o["dense_layers"])):
                mods += [nn.Linear(d_in, int(o["dense_hidden"])), nn.Tanh()]
                d_in = int(o["dense_hidden"])
            mods.append(nn.Linear(d_in, self.dense_out * h * w))
            self.dense = nn.Sequential(*mods)
            c_in += self.dense_out
        upper: list[nn.Module] = []
        for width in tuple(o["upper"]):
            upper += [nn.Conv2d(c_in, int(width), 1), nn.Tanh()]
            c_in = int(width)
        self.upper = nn.Sequential(*upper)
        # any image size without the dense pathway (diffusion.images.tiling); tiles snap to the
        # coarsest pooling grid so that they pool the same blocks as the whole image
        self.fully_convolutional = self.dense is None
        self.size_multiple = 1
        self.tile_align = 2 ** (n_scales - 1)
        self.readout = nn.Conv2d(c_in, c * spec.n_outputs * spec.J, 1)
        nn.init.zeros_(self.readout.weight)
        nn.init.zeros_(self.readout.bias)

    def forward(self, xt: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b, c, h, w = xt.shape  # any size without the dense pathway (fully convolutional)
        feats = self.conv(xt) if len(self.conv) else xt  # (B, conv_channels, H, W)
        if self.dense is not None:
            d = self.dense(xt).view(b, self.dense_out, h, w)
            feats = torch.cat([feats, d], dim=1)
        y = self.readout(self.upper(feats))  # (B, C * n_out * J, H, W)
        y = y.view(b, c, self.n_outputs, self.J, h, w)
        z = torch.einsum("bckjhw,bj->bchwk", y, g.to(y.dtype))  # App. D.2.1 readout
        return z


@register_network("conv")
def build_conv(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    """Registry entry for kind "conv" (options documented in the module docstring)."""
    return MultiScaleConvNet(spec, **dataclasses.asdict(config.typed_options))
