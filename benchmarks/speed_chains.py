"""Sampling overheads of the speed benchmark (benchmarks/speed_engine.py has the training step
and the bound; timing as there: interleaved blocks, this thread's CPU time).

- sampling: a full T-step ancestral sample (and each posterior chain, and a strided chain of S
  steps) against the same network calls replayed bare: the inputs one run of the chain gave
  the network, recorded, fed to it again without the chain around it.
- reference floors (report only, the toy nets): the full, strided and binary posterior chains
  against a hand-written minimal chain of the same kernel (benchmarks/speed_floor.py), timed
  in the same blocks as their rows: how much of a gap any sampler would have; and the full
  chain with subnormals computed against the lab's mode, where they are flushed.
"""

from __future__ import annotations

import torch

from benchmarks.speed_common import Measurement, interleaved, median, paired_ratio
from benchmarks.speed_engine import CLOCK, CPU, _flush_gain, _trainer_model, with_subnormals
from benchmarks.speed_floor import minimal_binary_chain, minimal_gaussian_chain
from diffusion.chains.posterior_chains import (
    binary_inpaint_chain,
    denoise_chain,
    inpaint_paper_chain,
    inpaint_repaint_chain,
    repaint_schedule,
)
from diffusion.chains.reverse import gaussian_reverse, model_reverse
from diffusion.chains.sampling import sample_chain
from diffusion.config import RunConfig


def _bare_forwards(model, chain, steps: int):
    """The network calls `chain` makes, replayed bare: one run of the chain records each
    call's inputs (a forward hook on the network), the baseline then makes the same calls on
    the same inputs without gradients. The inputs matter: the network's cost depends on them
    (float32 denormals in the RBF units' tails), so a baseline fed one fixed batch measures
    other arithmetic than the chain's. ValueError if the chain made other than `steps` calls.
    The baseline is the network run eagerly, also where the chain runs it compiled."""
    net = model.net
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = net.register_forward_pre_hook(
        lambda module, args: calls.append((args[0].detach(), args[1].detach()))
    )
    try:  # a compiled network (train.compile) runs eagerly here, so that the hook sees its calls
        with torch.compiler.set_stance("force_eager"):
            chain()
    finally:
        hook.remove()
    if len(calls) != steps:
        raise ValueError(f"the chain made {len(calls)} network calls, expected {steps}")

    @torch.no_grad()
    def run() -> None:
        for x, g in calls:
            net(x, g)

    return run


def _chain_measure(
    name, chain, bare, *, calls, blocks, detail, minimal=None, subnormal=False
) -> list[Measurement]:
    """The chain against its bare forwards; with `minimal` (a hand-written chain of the same
    kernel, benchmarks/speed_floor.py) timed in the same blocks, also a report-only row: the
    chain against the minimal one; with `subnormal` one more: the chain with subnormals
    computed in full against the lab's mode."""
    fns = {"chain": chain, "bare": bare}
    if minimal is not None:
        fns["minimal"] = minimal
    if subnormal:
        fns["subnormal"] = with_subnormals(chain)
    times = interleaved(fns, calls=calls, blocks=blocks, warmup=1, clock=CLOCK)
    main = Measurement(
        name,
        median(times["chain"]),
        median(times["bare"]),
        paired_ratio(times["chain"], times["bare"]),
        1.05,
        "<=",
        "s/chain",
        {**detail, "ratio": "chain / bare forwards"},
    )
    kind, label = name.split("/", 1)
    rows = [main]
    if subnormal:
        rows.append(
            _flush_gain(
                f"{kind}_flush_gain/{label}",
                times["chain"],
                times["subnormal"],
                "s/chain",
                detail,
            )
        )
    if minimal is None:
        return rows
    floor = Measurement(
        f"{kind}_vs_minimal/{label}",
        median(times["chain"]),
        median(times["minimal"]),
        paired_ratio(times["chain"], times["minimal"]),
        None,
        "report",
        "s/chain",
        {
            **detail,
            "minimal_over_bare": round(paired_ratio(times["minimal"], times["bare"]), 4),
            "ratio": "chain / hand-written minimal chain of the same kernel",
        },
    )
    return [*rows, floor]


def sampling_overheads(
    label: str,
    config: RunConfig,
    n: int,
    *,
    calls: int,
    blocks: int,
    posteriors: bool,
    floor: bool = False,
) -> list[Measurement]:
    """Full chain, strided chain (Gaussian) and the posterior chains, each against as many
    bare forwards at the same batch; with `floor` the full, strided and binary posterior
    chains also against a hand-written minimal chain (benchmarks/speed_floor.py)."""
    model, _ = _trainer_model(config)
    gen = torch.Generator().manual_seed(0)
    T, out = model.T, []
    x = model.process.prior_sample(n, model.shape, gen, CPU)
    detail = {"n": n, "T": T}
    full = lambda: sample_chain(model, n, gen, CPU)  # noqa: E731
    gauss = model.process.kind == "gaussian" and not getattr(model.process, "full", False)
    minimal = None
    if floor and gauss:
        minimal = minimal_gaussian_chain(model, n, gen)
    elif floor and model.process.kind == "binomial":
        minimal = _minimal_binary_sample(model, n, gen)
    out += _chain_measure(
        f"sample/{label}",
        full,
        _bare_forwards(model, full, T),
        calls=calls,
        blocks=blocks,
        detail=detail,
        minimal=minimal,
        subnormal=floor,
    )
    if gauss:
        S = max(2, T // 4)
        strided = lambda: sample_chain(model, n, gen, CPU, steps=S)  # noqa: E731
        out += _chain_measure(
            f"sample_strided/{label}",
            strided,
            _bare_forwards(model, strided, S),
            calls=calls,
            blocks=blocks,
            detail={**detail, "S": S},
            minimal=minimal_gaussian_chain(model, n, gen, S) if floor else None,
        )
        if posteriors:
            out += _gaussian_posteriors(label, model, x, gen, calls=calls, blocks=blocks)
    elif model.process.kind == "binomial" and posteriors:
        out += _binary_posterior(label, model, x, gen, calls=calls, blocks=blocks, floor=floor)
    return out


def _gaussian_posteriors(label, model, x, gen, *, calls, blocks) -> list[Measurement]:
    rev = gaussian_reverse(model)
    T, n = model.T, x.shape[0]
    mask = torch.zeros(model.shape, dtype=torch.bool)
    mask.view(-1)[: mask.numel() // 2] = True
    jl, js = max(1, T // 10), 3
    seq = repaint_schedule(T, jl, js)
    repaint_steps = sum(1 for a, b in zip(seq[:-1], seq[1:], strict=True) if b < a)
    chains = {
        "denoise": (lambda: denoise_chain(rev, x, 0.5, generator=gen), T),
        "inpaint_paper": (lambda: inpaint_paper_chain(rev, x, mask, generator=gen), T),
        "inpaint_repaint": (
            lambda: inpaint_repaint_chain(
                rev, x, mask, jump_length=jl, jump_n_sample=js, generator=gen
            ),
            repaint_steps,
        ),
    }
    return [
        m
        for name, (fn, steps) in chains.items()
        for m in _chain_measure(
            f"posterior_{name}/{label}",
            fn,
            _bare_forwards(model, fn, steps),
            calls=calls,
            blocks=blocks,
            detail={"n": n, "T": T, "forwards": steps},
        )
    ]


def _minimal_binary_sample(model, n, gen):
    """The minimal binary chain with nothing observed (d = 1/2 everywhere): ancestral sampling."""
    return minimal_binary_chain(model, torch.full((n, *model.shape), 0.5), gen)


def _binary_posterior(label, model, x, gen, *, calls, blocks, floor=False) -> list[Measurement]:
    rev = model_reverse(model)
    d = torch.full_like(x, 0.5, dtype=torch.float64)
    half = d[0].numel() // 2
    d.view(x.shape[0], -1)[:, :half] = x.view(x.shape[0], -1)[:, :half].double()
    chain = lambda: binary_inpaint_chain(rev, d, generator=gen)  # noqa: E731
    return _chain_measure(
        f"posterior_binary/{label}",
        chain,
        _bare_forwards(model, chain, model.T),
        calls=calls,
        blocks=blocks,
        detail={"n": x.shape[0], "T": model.T},
        minimal=minimal_binary_chain(model, d, gen) if floor else None,
    )
