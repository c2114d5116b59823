"""Temporal readout: J Gaussian bumps over the steps (Sohl-Dickstein et al. 2015, App. D.2.1).

The network does not take t as input. It outputs, per data dimension and output k, J numbers
y_{k,1..J}; the readout at step t is z_k = sum_j g_j(t) y_{k,j}, where g_j are Gaussian bumps
with centres evenly spaced over [1, T], width equal to their spacing, normalized so that
sum_j g_j(t) = 1. With J = T the basis is one-hot (a separate readout per step, as in the
paper's toy networks); non-integer t interpolates linearly between neighbouring steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TemporalBasis(nn.Module):
    """g(t): (B,) steps in [1, T] (int or float) -> (B, J) weights, rows summing to 1.

    spacing "linear" (the paper's): centres evenly spaced in t. "log": evenly spaced in log t,
    widths equal to that spacing, so the first steps (where the best reverse kernel changes
    fastest: its size follows log(t - 1) on the heartbeat) get bumps of their own while late
    steps share wide ones. One-hot (J = T) ignores the spacing.
    """

    def __init__(self, T: int, J: int, spacing: str = "linear") -> None:
        super().__init__()
        if not 1 <= J <= T:
            raise ValueError(f"J must be in [1, T={T}], got {J}")
        self.T, self.J = T, J
        self.one_hot = J == T
        self.log = spacing == "log" and not self.one_hot
        if self.log:
            centres = torch.linspace(0.0, math.log(T), J, dtype=torch.float64)
            self.width = math.log(T) / (J - 1) if J > 1 else math.log(T) + 1.0
        else:
            centres = torch.linspace(1.0, float(T), J, dtype=torch.float64)
            self.width = (T - 1) / (J - 1) if J > 1 else float(T)
        self.register_buffer("centres", centres, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(t):  # integer steps: rows of the cached (T, J) table
            # index_select, not t-indexing: the same rows at a third to a fifth of the cost
            return torch.index_select(self.table(), 0, t.to(self.centres.device).long() - 1)
        return self._compute(t)

    def table(self) -> torch.Tensor:
        """(T, J) float32: g(t) at t = 1..T, computed once (per device)."""
        if not hasattr(self, "_table") or self._table.device != self.centres.device:
            self._table = self._compute(torch.arange(1, self.T + 1, device=self.centres.device))
        return self._table

    def rows_at(self, t: int, n: int) -> torch.Tensor:
        """(n, J) float32: `forward` of n steps all equal to the integer t (a chain's level),
        from one row of the table (contiguous: the networks' products run faster on it than
        on a broadcast row)."""
        return self.table()[t - 1].expand(n, self.J).contiguous()

    def _compute(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(torch.float64).to(self.centres.device)
        if self.one_hot:
            lo = torch.floor(t).clamp(1, self.T)
            hi = torch.clamp(lo + 1, max=self.T)
            frac = (t - lo).clamp(0, 1)
            g = torch.zeros(t.shape[0], self.J, dtype=torch.float64, device=t.device)
            g.scatter_add_(1, (lo.long() - 1)[:, None], (1 - frac)[:, None])
            g.scatter_add_(1, (hi.long() - 1)[:, None], frac[:, None])
            return g.float()
        u = torch.log(t.clamp(min=1.0)) if self.log else t
        d = (u[:, None] - self.centres[None, :]) / self.width
        logits = -0.5 * d * d
        return torch.softmax(logits, dim=1).float()

    def matrix(self) -> torch.Tensor:
        """(T, J) float64: g_j(t) for t = 1..T."""
        t = torch.arange(1, self.T + 1, dtype=torch.float64, device=self.centres.device)
        return self.forward(t).to(torch.float64)


def apply_readout(y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Contract coefficients y (B, ..., J) with basis weights g (B, J) -> (B, ...)."""
    view = (g.shape[0],) + (1,) * (y.dim() - 2) + (g.shape[1],)
    return (y * g.reshape(view)).sum(-1)


_KEY_GEN = torch.Generator().manual_seed(0)  # fixed projection used to group equal rows of g


class ReadoutLinear(nn.Module):
    """z = sum_j g_j (h W_j + b_j): a dense layer with one weight per basis function.

    h: (B, in_features), g: (B, J) -> (B, out_features). With `sparse` (one-hot basis, at most
    two non-zero weights per row) and J > GATHER_MIN_J only the active W_j are gathered, so
    J = T = 2000 is cheap; below that one dense product over every W_j is faster (1.8x for the
    swiss-roll net, J = 40, on one CPU thread).
    Initialised small: the engine's kernels are perturbations of the forward kernel.
    """

    GATHER_MIN_J = 128

    def __init__(
        self,
        in_features: int,
        out_features: int,
        J: int,
        *,
        sparse: bool = False,
        init_scale: float = 1e-2,
    ) -> None:
        super().__init__()
        self.J, self.sparse = J, sparse
        std = init_scale / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.randn(J, in_features, out_features) * std)
        self.bias = nn.Parameter(torch.zeros(J, out_features))

    def forward(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if g.shape[0] >= 2048:  # evaluation / sampling blocks share few distinct steps
            key = g.double() @ torch.rand(
                g.shape[1], dtype=torch.float64, generator=_KEY_GEN, device="cpu"
            ).to(g.device)
            keys, inverse = torch.unique(key, return_inverse=True)
            if keys.shape[0] * 8 <= g.shape[0]:
                first = torch.zeros_like(keys, dtype=torch.long).scatter_(
                    0, inverse, torch.arange(g.shape[0], device=g.device)
                )
                return self._grouped(h, g[first], inverse)
        if self.sparse and self.J > self.GATHER_MIN_J:
            return self._gather(h, g)
        B, J = g.shape
        y = (h @ self.weight.permute(1, 0, 2).reshape(h.shape[1], -1)).view(B, J, -1)
        return (y * g[:, :, None]).sum(1) + g @ self.bias

    def _gather(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """One-hot basis: gather the (at most two) active W_j of each example."""
        vals, idx = torch.topk(g, min(2, self.J), dim=1)  # (B, k)
        z = torch.einsum("bi,bkio,bk->bo", h, self.weight[idx], vals)
        return z + torch.einsum("bko,bk->bo", self.bias[idx], vals)

    def _grouped(self, h: torch.Tensor, uniq: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        """Rows sharing the same g: mix the weights once per distinct g, one matmul each."""
        J, n_in, n_out = self.weight.shape
        w = (uniq @ self.weight.reshape(J, -1)).view(-1, n_in, n_out)
        b = uniq @ self.bias
        out = h.new_zeros(h.shape[0], n_out)
        for u in range(uniq.shape[0]):
            rows = (inverse == u).nonzero().squeeze(1)
            out.index_add_(0, rows, h[rows] @ w[u] + b[u])
        return out
