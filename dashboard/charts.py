"""Plotly figures for the dashboard: pure functions from numbers to figures.

Nothing here reads the store or Streamlit; the pages pass in lists of (step, value) and
vectors. Every figure sets `uirevision`, so a live refresh keeps the user's zoom and the
legend toggles (Plotly keeps UI state while `uirevision` is unchanged). Units are bits.

The quantities are those of Sohl-Dickstein et al. 2015: K is the lower bound on the
log-likelihood (Eq. 14), L_null the log-likelihood of the isotropic Gaussian (or binomial)
that the forward process ends in, so K - L_null is the gain over that null model (Table 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.downsample import min_max_last

Series = Sequence[tuple[int, float]]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")
_LAYOUT = dict(
    template="plotly_white",
    margin=dict(l=60, r=20, t=50, b=50),
    height=360,
    legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
    font=dict(size=13),
)


def _base(title: str, x_title: str, y_title: str, revision: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=dict(text=title, y=0.98, yanchor="top"),
        xaxis_title=x_title,
        yaxis_title=y_title,
        uirevision=revision,
        **_LAYOUT,
    )
    return fig


def _finite(series: Series) -> tuple[list[int], list[float]]:
    """Finite points, downsampled to at most MAX_POINTS (minima, maxima and the last kept)."""
    xs, ys = [], []
    for step, value in series:
        if value is not None and np.isfinite(value):
            xs.append(int(step))
            ys.append(float(value))
    return min_max_last(xs, ys)


def reference_line(fig: go.Figure, y: float | None, label: str, color: str, dash: str) -> None:
    if y is None or not np.isfinite(y):
        return
    fig.add_hline(
        y=y,
        line=dict(color=color, dash=dash, width=1.5),
        annotation_text=f"{label}: {y:.3g}",
        annotation_position="bottom right",
        annotation_font=dict(size=12, color=color),
    )


BOUND_LABELS = {
    "k_train_bits": "K (train)",
    "k_holdout_bits": "K (holdout)",
    "k_minus_lnull_bits": "K - L_null (holdout)",
}


def bound_curves(
    series: Mapping[str, Series],
    *,
    paper_k_bits: float | None = None,
    true_ll_bits: float | None = None,
    unit: str = "bits",
    revision: str = "bound",
) -> go.Figure:
    """The bound K against training step, train and holdout, and K - L_null.

    `series` maps metric names (keys of BOUND_LABELS, others are drawn with their own name)
    to (step, value) lists. The paper's Table 1 number and the true log-likelihood of the
    data (where known) are drawn as horizontal reference lines.
    """
    fig = _base("Bound on the log-likelihood", "training step", f"{unit}", revision)
    for i, (name, points) in enumerate(series.items()):
        xs, ys = _finite(points)
        if not xs:
            continue
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers" if len(xs) < 30 else "lines",
                name=BOUND_LABELS.get(name, name),
                line=dict(color=COLORS[i % len(COLORS)], width=2),
            )
        )
    reference_line(fig, paper_k_bits, "paper K", "#555555", "dash")
    reference_line(fig, true_ll_bits, "true log-likelihood", "#2ca02c", "dot")
    if not fig.data:
        _empty_note(fig, "No bound evaluated yet: the first point appears after the first eval.")
    return fig


def training_loss(points: Series, *, unit: str = "bits") -> go.Figure:
    """The training objective: the minibatch estimate of -K (one random t per example, so
    noisy and not the evaluated bound), against training step."""
    fig = _base(
        "Training loss (-K on minibatches, one t per example)", "training step", unit, "loss"
    )
    xs, ys = _finite(points)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            name="training loss (-K, minibatch)",
            line=dict(color=COLORS[4], width=1.5),
        )
    )
    fig.update_layout(showlegend=True)
    return fig


def _empty_note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(
        text=text,
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        font=dict(size=14, color="#666666"),
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)


def compare_curves(
    runs: Sequence[tuple[str, Series]],
    *,
    metric_label: str = "K (holdout)",
    unit: str = "bits",
    revision: str = "compare",
) -> go.Figure:
    """One curve per run, overlaid: `runs` is a list of (label, (step, value) list)."""
    fig = _base(f"{metric_label}: comparison", "training step", unit, revision)
    for i, (label, points) in enumerate(runs):
        xs, ys = _finite(points)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers" if len(xs) < 30 else "lines",
                name=label,
                line=dict(color=COLORS[i % len(COLORS)], width=2),
            )
        )
    if not any(len(_finite(p)[0]) for _, p in runs):
        _empty_note(fig, "None of these runs has an evaluated bound yet.")
    return fig


def kl_profile(
    profile_bits: Sequence[float], *, unit: str = "bits", revision: str = "kl"
) -> go.Figure:
    """The per-step terms of the bound: KL(q(x(t-1)|x(t),x(0)) || p(x(t-1)|x(t))) for t=1..T."""
    fig = _base("Per-step KL profile", "diffusion step t", f"KL ({unit})", revision)
    values = np.asarray(list(profile_bits), dtype=float)
    if values.size == 0:
        _empty_note(fig, "No per-step profile yet.")
        return fig
    fig.add_trace(
        go.Bar(
            x=np.arange(1, values.size + 1), y=values, name="KL at step t", marker_color=COLORS[0]
        )
    )
    fig.update_layout(showlegend=False)
    return fig


def beta_schedule(
    beta: Sequence[float], baseline: Sequence[float] | None = None, *, revision: str = "beta"
) -> go.Figure:
    """The forward noise schedule beta_t: learned (or used) against its baseline (log scale)."""
    fig = _base("Forward diffusion schedule", "diffusion step t", "beta_t", revision)
    b = np.asarray(list(beta), dtype=float)
    if baseline is not None and len(baseline):
        base = np.asarray(list(baseline), dtype=float)
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, base.size + 1),
                y=base,
                name="baseline",
                line=dict(color="#888888", dash="dash", width=2),
            )
        )
    if b.size:
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, b.size + 1),
                y=b,
                name="schedule in use",
                line=dict(color=COLORS[1], width=2),
            )
        )
    else:
        _empty_note(fig, "No schedule recorded yet.")
        return fig
    fig.update_yaxes(type="log")
    return fig


def reverse_variance(
    variance: Sequence[float],
    lower: Sequence[float] | None = None,
    upper: Sequence[float] | None = None,
    *,
    revision: str = "revvar",
) -> go.Figure:
    """The reverse kernel's variance per step, between the entropy bounds (model.md section 8).

    The lower bound is the forward posterior variance beta_tilde_t, the upper bound beta_t:
    the reverse step's conditional entropy must lie between the two (Sohl-Dickstein 2015,
    Sec. 2.4 and App. A).
    """
    fig = _base("Reverse variance and its entropy bounds", "diffusion step t", "variance", revision)
    v = np.asarray(list(variance), dtype=float)
    t = np.arange(1, v.size + 1)
    if lower is not None and upper is not None and len(lower) and len(upper):
        lo = np.asarray(list(lower), dtype=float)
        hi = np.asarray(list(upper), dtype=float)
        tt = np.arange(1, lo.size + 1)
        fig.add_trace(go.Scatter(x=tt, y=hi, name="upper bound", line=dict(color="#999999")))
        fig.add_trace(
            go.Scatter(
                x=tt,
                y=lo,
                name="lower bound",
                fill="tonexty",
                fillcolor="rgba(150,150,150,0.2)",
                line=dict(color="#999999", dash="dot"),
            )
        )
    if v.size:
        fig.add_trace(
            go.Scatter(x=t, y=v, name="learned variance", line=dict(color=COLORS[2], width=2))
        )
    if fig.data:
        fig.update_yaxes(type="log")
    else:
        _empty_note(fig, "No reverse variance recorded for this run.")
    return fig


def point_cloud(
    points: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    title: str = "Samples",
    revision: str = "cloud",
) -> go.Figure:
    """2-D samples (N x 2) as a scatter, over optional data points in grey."""
    fig = _base(title, "x1", "x2", revision)
    if reference is not None and len(reference):
        ref = np.asarray(reference, dtype=float)
        fig.add_trace(
            go.Scattergl(
                x=ref[:, 0],
                y=ref[:, 1],
                mode="markers",
                name="data",
                marker=dict(size=3, color="#bbbbbb"),
            )
        )
    pts = np.asarray(points, dtype=float).reshape(-1, 2) if len(points) else np.zeros((0, 2))
    fig.add_trace(
        go.Scattergl(
            x=pts[:, 0],
            y=pts[:, 1],
            mode="markers",
            name="samples",
            marker=dict(size=4, color=COLORS[0], opacity=0.7),
        )
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    fig.update_layout(height=420)
    return fig


_PLAY_BUTTON = dict(
    type="buttons",
    showactive=False,
    x=0,
    y=-0.12,
    xanchor="left",
    buttons=[
        dict(
            label="Play",
            method="animate",
            args=[None, dict(frame=dict(duration=120), fromcurrent=True)],
        )
    ],
)


def _frame_slider(labels: list, n: int) -> dict:
    """A slider over the animation's n frames, labelled t = labels[i]."""
    return dict(
        active=0,
        x=0.1,
        len=0.9,
        y=-0.05,
        currentvalue=dict(prefix="t = "),
        steps=[
            dict(
                method="animate",
                label=str(labels[i]),
                args=[[str(i)], dict(mode="immediate", frame=dict(duration=0))],
            )
            for i in range(n)
        ],
    )


def trajectory_animation(
    frames: np.ndarray,
    *,
    steps: Sequence[int] | None = None,
    title: str = "Reverse trajectory: noise to data",
) -> go.Figure:
    """An animated scatter of 2-D points along the reverse trajectory (S x N x 2).

    Frame 0 is pure noise x(T); the last frame is the sample x(0). A play button and a
    slider step through the frames.
    """
    arr = np.asarray(frames, dtype=float)
    n = arr.shape[0]
    labels = list(steps) if steps is not None else list(range(n - 1, -1, -1))
    lim = float(np.nanmax(np.abs(arr))) * 1.05 if arr.size else 1.0
    fig = _base(title, "x1", "x2", "trajectory")
    fig.add_trace(
        go.Scatter(
            x=arr[0, :, 0],
            y=arr[0, :, 1],
            mode="markers",
            marker=dict(size=4, color=COLORS[0], opacity=0.7),
            name="x(t)",
        )
    )
    fig.frames = [
        go.Frame(data=[go.Scatter(x=arr[i, :, 0], y=arr[i, :, 1])], name=str(i)) for i in range(n)
    ]
    fig.update_layout(
        height=460,
        xaxis=dict(range=[-lim, lim]),
        yaxis=dict(range=[-lim, lim], scaleanchor="x", scaleratio=1),
        updatemenus=[_PLAY_BUTTON],
        sliders=[_frame_slider(labels, n)],
        margin=dict(l=60, r=20, t=50, b=110),
    )
    return fig


def sequences(samples: np.ndarray, *, title: str = "Samples", max_rows: int = 6) -> go.Figure:
    """1-D sequences (heartbeat data, N x L) as stacked line plots."""
    arr = np.asarray(samples, dtype=float)
    arr = arr.reshape(arr.shape[0], -1)[:max_rows]
    fig = _base(title, "position", "value", "sequences")
    for i, row in enumerate(arr):
        fig.add_trace(
            go.Scatter(
                y=row + 1.5 * i,
                mode="lines",
                name=f"sample {i + 1}",
                line=dict(color=COLORS[i % len(COLORS)], width=1.5),
            )
        )
    fig.update_layout(showlegend=False)
    fig.update_yaxes(showticklabels=False)
    return fig
