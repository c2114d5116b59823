"""Pick the compute device: cuda, else cpu; and the CPU's float mode.

Apple's mps is not picked: the engine's math runs in float64, which the MPS backend lacks
(docs/model-notes.md). Asking for it explicitly is an error that says so.

Picking a device also flushes subnormal floats to zero on this thread (`flush_denormals`).
"""

from __future__ import annotations

import os

import torch

from diffusion.config import ConfigError


def flush_denormals() -> bool:
    """Treat subnormal floats (float32 below 1.2e-38, float64 below 2.2e-308) as zero in this
    thread's CPU arithmetic, and in the threads it starts from now on; True where the CPU
    supports it (x86 with SSE3, arm64).

    Why: the toy networks' RBF units far from their centres (swiss roll), their saturated
    sigmoids (heartbeat) and the gradients through both fall into float32's subnormal range,
    where the CPU takes a microcoded path about a hundred times slower; with them flushed a
    training step of either net is 2.2 times faster and a full swiss-roll sample 4.3 times
    (benchmarks/speed_engine.py). No value the engine keeps is that small: the
    bound's terms and the schedule live far above it (docs/model-notes.md).
    The mode is per thread and a thread inherits it when started, so it is set before torch's
    intra-op pool starts its threads (worker.threads.apply, pick_device at the start of a run);
    set after the pool started, it reaches the calling thread only.
    """
    return bool(torch.set_flush_denormal(True))


def pick_device(requested: str | None = "auto") -> torch.device:
    """ "auto" -> cuda if available, else cpu; an explicit unavailable device errors.

    "cuda:N" picks one GPU of several (a worker per GPU). Flushes subnormals to zero for the
    CPU side of the run (`flush_denormals`).
    """
    flush_denormals()
    requested = requested or "auto"
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("train.device", "cuda was requested but no CUDA device is available")
        return torch.device(requested)
    if requested == "mps":
        raise ConfigError(
            "train.device",
            "mps is not supported yet: the engine computes in float64, which Apple's MPS "
            "backend lacks; use cpu or cuda",
        )
    if requested != "cpu":
        raise ConfigError("train.device", f"must be auto, cpu or cuda; got {requested!r}")
    return torch.device("cpu")


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`x` (on the CPU) on `device`. To a GPU through pinned memory without waiting: a copy
    from ordinary memory waits for the GPU's queued work (every training step would then wait
    for the one before it); from pinned memory it is queued like a kernel."""
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def device_memory(device: torch.device | str) -> int | None:
    """Bytes a run may use on `device`: a GPU's total memory, or the memory the system has
    available for a CPU run (None when it cannot be told)."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return int(torch.cuda.get_device_properties(index).total_memory)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(config: object, device: torch.device | str) -> None:
    """Refuse (ConfigError on diffusion.T) a run that cannot fit on this device, with the
    estimate; before anything is allocated."""
    from diffusion.memory import memory_problem

    message = memory_problem(config, device_memory(device), where=f"this {device} device")
    if message:
        raise ConfigError("diffusion.T", message)
