"""A modern image network for the paper's reverse kernels: a UNet (network kind "unet").

The architecture follows the UNets of Ho et al. 2020 and Nichol & Dhariwal 2021 (residual
blocks with group norm and SiLU, the time embedding as a scale and shift of every block's
second normalisation, optional self-attention at chosen resolutions, skip connections between
the down and up paths); it is written here (about 200 lines) rather than taken from diffusers'
`UNet2DModel` because it is faster per step on a CPU at these sizes (benchmarks/images.py
measures both: docs/model-notes.md "Image networks") and needs no extra dependency.

It fits the engine's contract (diffusion.nets.base): forward(xt (B, C, H, W), g (B, J)) ->
z (B, C, H, W, n_outputs), the paper's reverse-kernel perturbations (Gaussian: mean and
variance; binomial: logits), so the bound, the learned schedule, posteriors and strided
sampling use it unchanged. The network sees t only through the temporal basis weights g(t):
  time="sinusoidal": the transformer embedding of the basis' centre of mass
      tau = sum_j g_j (j - 1) / (J - 1) in [0, 1] (monotone in t), at 1000 tau;
  time="basis": g itself (the paper's temporal embedding) through the embedding MLP.
readout="direct" maps the last features to C * n_outputs channels; readout="basis" keeps the
paper's readout (App. D.2.1): C * n_outputs * J channels contracted with g. The output layer
starts at zero, so an untrained network gives the forward kernel's form.

Fully convolutional: any H x W runs; sides that are not multiples of 2^(levels - 1) are
reflect-padded and cropped back.

Options (NetworkConfig.options) and defaults: channels=32, mults=[1, 2, 2], res_blocks=1,
attention=[] (resolutions, e.g. [16], where blocks get self-attention), mid_attention=false,
heads=1, groups=32 (capped to divide the widths), dropout=0.0, time="sinusoidal",
readout="direct", channels_last=false (memory format; see benchmarks/images.py --profile).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from diffusion.config import ConfigError, NetworkConfig
from diffusion.config_options import UnetOptions
from diffusion.images.sizes import norm_tile
from diffusion.nets.base import NetSpec, register_network

DEFAULTS: dict[str, Any] = dataclasses.asdict(UnetOptions())  # the schema's defaults


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, groups), channels)


def sinusoidal(tau: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """(B,) in [0, 1] -> (B, dim): [cos(s tau f_k), sin(s tau f_k)], f_k = 10^-4k/(dim/2)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=tau.device) / half)
    args = scale * tau[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class ResBlock(nn.Module):
    """GN-SiLU-conv, time scale/shift on the second GN, SiLU-dropout-conv (zero init), skip."""

    def __init__(self, c_in: int, c_out: int, emb: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in, groups), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * c_out)
        self.norm2, self.drop = _norm(c_out, groups), nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class Attention(nn.Module):
    """Self-attention over the pixels (multi-head, scaled dot product), residual."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        if channels % heads:
            raise ConfigError("network.options.heads", f"must divide the width {channels}")
        self.heads, self.norm = heads, _norm(channels, groups)
        self.qkv, self.out = nn.Conv2d(channels, 3 * channels, 1), nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = F.scaled_dot_product_attention(
            q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2)
        )
        return x + self.out(a.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """Residual blocks (each optionally followed by attention) at one resolution."""

    def __init__(self, blocks: list[ResBlock], attn: list[nn.Module]) -> None:
        super().__init__()
        self.blocks, self.attn = nn.ModuleList(blocks), nn.ModuleList(attn)


class UNet(nn.Module):
    """forward(xt (B, C, H, W), g (B, J)) -> z (B, C, H, W, n_outputs); module docstring."""

    def __init__(self, spec: NetSpec, **o: Any) -> None:
        super().__init__()
        if len(spec.shape) != 3:
            raise ConfigError("network.kind", f"unet needs images (C, H, W), got {spec.shape}")
        c = spec.shape[0]
        ch, groups, drop = int(o["channels"]), int(o["groups"]), float(o["dropout"])
        mults, attn_res = tuple(o["mults"]), set(o["attention"])
        self.c, self.n_outputs, self.J = c, spec.n_outputs, spec.J
        self.time, self.readout_mode = o["time"], o["readout"]
        self.channels_last = bool(o["channels_last"])
        self.levels = len(mults)
        self.fully_convolutional = True  # diffusion.images.tiling: any size, padded to the multiple
        self.size_multiple = self.tile_align = 2 ** (self.levels - 1)
        # group norm: statistics over the whole input, so larger images run on tiles of the
        # training size by default (diffusion.images.sizes.SizeRule.norm_tile)
        self.norm_tile = norm_tile(spec.shape[1:], self.size_multiple)
        emb = 4 * ch
        t_in = ch if self.time == "sinusoidal" else spec.J
        self.temb = nn.Sequential(nn.Linear(t_in, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.register_buffer("pos", torch.linspace(0.0, 1.0, spec.J), persistent=False)
        self.inp = nn.Conv2d(c, ch, 3, padding=1)
        res = max(spec.shape[1], spec.shape[2])

        def attn(width: int, r: int) -> nn.Module:
            return Attention(width, int(o["heads"]), groups) if r in attn_res else nn.Identity()

        skips, width = [ch], ch
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for i, m in enumerate(mults):
            blocks, attns = [], []
            for _ in range(int(o["res_blocks"])):
                blocks.append(ResBlock(width, ch * m, emb, groups, drop))
                width = ch * m
                attns.append(attn(width, res))
                skips.append(width)
            self.down.append(Level(blocks, attns))
            last = i == len(mults) - 1
            self.downsample.append(
                nn.Identity() if last else nn.Conv2d(width, width, 3, stride=2, padding=1)
            )
            if not last:
                skips.append(width)
                res //= 2
        self.mid1 = ResBlock(width, width, emb, groups, drop)
        self.mid_attn = Attention(width, int(o["heads"]), groups) if o["mid_attention"] else None
        self.mid2 = ResBlock(width, width, emb, groups, drop)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            blocks, attns = [], []
            for _ in range(int(o["res_blocks"]) + 1):
                blocks.append(ResBlock(width + skips.pop(), ch * m, emb, groups, drop))
                width = ch * m
                attns.append(attn(width, res))
            self.up.append(Level(blocks, attns))
            self.upsample.append(nn.Conv2d(width, width, 3, padding=1) if i else nn.Identity())
            res *= 2 if i else 1
        r = spec.J if self.readout_mode == "basis" else 1
        self.out_norm = _norm(width, groups)
        self.out = nn.Conv2d(width, c * spec.n_outputs * r, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def embed(self, g: torch.Tensor) -> torch.Tensor:
        if self.time == "basis":
            return self.temb(g)
        tau = g @ self.pos.to(g.dtype)  # centre of mass of the basis weights, monotone in t
        return self.temb(sinusoidal(tau, self.temb[0].in_features).to(g.dtype))

    def forward(self, xt: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b, c, h, w = xt.shape
        k = 2 ** (self.levels - 1)
        ph, pw = -h % k, -w % k
        x = F.pad(xt, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        emb = self.embed(g.to(x.dtype))
        hs = [self.inp(x)]
        for level, down in zip(self.down, self.downsample, strict=True):
            for block, attn in zip(level.blocks, level.attn, strict=True):
                hs.append(attn(block(hs[-1], emb)))
            if not isinstance(down, nn.Identity):
                hs.append(down(hs[-1]))
        y = self.mid2(self._mid(self.mid1(hs[-1], emb)), emb)
        for level, up in zip(self.up, self.upsample, strict=True):
            for block, attn in zip(level.blocks, level.attn, strict=True):
                y = attn(block(torch.cat([y, hs.pop()], dim=1), emb))
            if not isinstance(up, nn.Identity):
                y = up(F.interpolate(y, scale_factor=2.0, mode="nearest"))
        y = self.out(F.silu(self.out_norm(y)))[:, :, :h, :w]
        if self.readout_mode == "basis":  # App. D.2.1: sum_j g_j y_j per pixel and output
            y = y.reshape(b, c, self.n_outputs, self.J, h, w)
            return torch.einsum("bckjhw,bj->bchwk", y, g.to(y.dtype))
        return y.reshape(b, c, self.n_outputs, h, w).permute(0, 1, 3, 4, 2)

    def _mid(self, y: torch.Tensor) -> torch.Tensor:
        return self.mid_attn(y) if self.mid_attn is not None else y


@register_network("unet")
def build_unet(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    """Registry entry for kind "unet" (options in the module docstring)."""
    return UNet(spec, **dataclasses.asdict(config.typed_options))
