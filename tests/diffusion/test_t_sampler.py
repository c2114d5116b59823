"""The importance sampler of t (diffusion.training.parts.TSampler) against its definition: every
REFRESH steps the mean KL_t^2 of those steps is folded into the running mean (0.9 old + 0.1
new where t was drawn, the first draw sets it), and p(t) = 0.9 RMS_t / sum + 0.1 / (T - 1)
once every t has been drawn.

Broken versions these catch: a refresh at another cadence (p changes before the tenth step or
not at it), the new mean weighted 0.9 instead of 0.1, counts not reset between windows, an
older checkpoint's summed accumulators dropped or counted as no steps (the refresh comes 3
steps late and without them).
"""

from __future__ import annotations

import torch

from diffusion.training.parts import TSampler

T, B = 6, 8


def steps(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randint(2, T + 1, (B,), generator=gen),
            torch.rand(B, generator=gen, dtype=torch.float64) * 3,
        )
        for _ in range(n)
    ]


def definition(windows: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> torch.Tensor:
    """The running mean of KL_t^2 after these windows, written out per t."""
    sq, seen = [0.0] * (T - 1), [False] * (T - 1)
    for window in windows:
        sums, counts = [0.0] * (T - 1), [0] * (T - 1)
        for t, kl in window:
            for ti, v in zip(t.tolist(), kl.tolist(), strict=True):
                sums[ti - 2] += v * v
                counts[ti - 2] += 1
        for i in range(T - 1):
            if counts[i]:
                mean = sums[i] / counts[i]
                sq[i] = 0.9 * sq[i] + 0.1 * mean if seen[i] else mean
                seen[i] = True
    return torch.tensor(sq, dtype=torch.float64)


def test_refreshes_every_tenth_step_by_the_definition():
    s, data = TSampler(T), steps(20)
    for i, (t, kl) in enumerate(data[:10]):
        assert s.probs() is None  # uniform until the first refresh has seen every t
        s.update(t, kl)
        assert s.pending == (i + 1) % 10
    p10 = s.probs()
    assert p10 is not None
    torch.testing.assert_close(s.sq, definition([data[:10]]), rtol=1e-14, atol=0)
    for t, kl in data[10:19]:
        s.update(t, kl)
        assert torch.equal(s.probs(), p10)  # nothing changes between refreshes
    s.update(*data[19])
    want = definition([data[:10], data[10:]])
    torch.testing.assert_close(s.sq, want, rtol=1e-14, atol=0)
    rms = want.sqrt() + 1e-12
    torch.testing.assert_close(s.probs(), 0.9 * rms / rms.sum() + 0.1 / (T - 1))


def test_probabilities_are_copied_to_the_device_once_per_refresh():
    """The training step asks for p(t) on its device each step; the copy is made at most once
    per refresh (on a GPU each copy from the CPU waits for the queued steps). Here the "meta"
    device stands in for a GPU. Broken versions: a copy each step (a new tensor every call),
    or a copy kept past a refresh (the old probabilities on the device)."""
    s, data = TSampler(T), steps(20)
    meta, cpu = torch.device("meta"), torch.device("cpu")
    for t, kl in data[:10]:
        assert s.probs(meta) is None
        s.update(t, kl)
    first = s.probs(meta)
    assert first.device == meta and first.shape == (T - 1,)
    assert s.probs(meta) is first and s.probs(cpu) is s.probs()
    for t, kl in data[10:]:
        s.update(t, kl)
    assert s.probs(meta) is not first and s.probs(meta) is s.probs(meta)


def test_pending_steps_survive_a_checkpoint_bit_for_bit():
    data = steps(13)
    straight, stopped = TSampler(T), TSampler(T)
    for t, kl in data:
        straight.update(t, kl)
    for t, kl in data[:3]:
        stopped.update(t, kl)
    resumed = TSampler(T)
    resumed.load_state_dict(stopped.state_dict())
    assert resumed.pending == 3
    for t, kl in data[3:]:
        resumed.update(t, kl)
    assert torch.equal(resumed.sq, straight.sq) and torch.equal(resumed.count, straight.count)
    assert resumed.pending == straight.pending == 3


def test_an_older_checkpoints_summed_steps_are_kept_and_counted():
    """Checkpoints written before the draws were kept (b612faa..this change) held the pending
    steps as summed accumulators and their number in `pending`."""
    data = steps(10)
    idx = torch.cat([t for t, _ in data[:3]]) - 2
    kl = torch.cat([k for _, k in data[:3]])
    old = {
        "sq": torch.zeros(T - 1, dtype=torch.float64),
        "count": torch.zeros(T - 1, dtype=torch.long),
        "pending": 3,
        "acc_sq": torch.bincount(idx, weights=kl.square(), minlength=T - 1),
        "acc_n": torch.bincount(idx, minlength=T - 1),
    }
    s = TSampler(T)
    s.load_state_dict(old)
    assert s.pending == 3
    for t, k in data[3:9]:
        s.update(t, k)
    assert s.pending == 9 and int(s.count.sum()) == 0
    again = TSampler(T)  # saved again before the refresh: still 9 steps, 3 of them summed
    again.load_state_dict(s.state_dict())
    assert again.pending == 9
    again.update(*data[9])
    assert again.pending == 0 and int(again.count.sum()) == 10 * B
    torch.testing.assert_close(again.sq, definition([data]), rtol=1e-14, atol=0)
