"""Every setting read from the environment, in one place (standard library only, no torch).

The engine, the store, the workers, the dashboard and the `difflab` command all read their
DIFFLAB_* variables here, each through one function with its default, so that a variable
is named once (docs/architecture.md lists them):

  DIFFLAB_DATA_DIR            data folder (default ./.difflab): SQLite file, artifacts, runs
  DIFFLAB_DATABASE_URL        SQLAlchemy URL (default sqlite:///<data dir>/difflab.db)
  DIFFLAB_ARTIFACT_DIR        artifact folder (default <data dir>/artifacts)
  DIFFLAB_DATASETS            MNIST / CIFAR-10 files (default ./datasets)
  DIFFLAB_REDIS_URL           the broker (default redis://127.0.0.1:6379/0)
  DIFFLAB_WORKER_DEVICE       the device a worker announces (set by `difflab worker`)
  DIFFLAB_WORKER_QUEUES       the queues a worker serves (set by `difflab worker`)
  DIFFLAB_WORKER_CONCURRENCY  a worker's --concurrency (set by `difflab worker`)
  DIFFLAB_TORCH_THREADS       torch threads per job (else OMP_NUM_THREADS, else cpus / jobs)
  DIFFLAB_LEASE_S             seconds a job lease lasts without a heartbeat (9)
  DIFFLAB_RECONCILE_S         seconds between the reconciler's passes (2)
  DIFFLAB_RECONCILE_GRACE_S   seconds a queued job may wait unseen before it is re-sent (10)
  DIFFLAB_TRAIN_TIME_LIMIT_S  hard limit of one training task (72 h)
  DIFFLAB_JOB_TIME_LIMIT_S    hard limit of one posterior job (2 h)
  DIFFLAB_MAX_RUN_GB          the most memory one run may need (diffusion.memory)
  DIFFLAB_SECRET_KEY          the key that signs session cookies
  DIFFLAB_SECRET_KEY_FILE     a file holding it (default: $XDG_CONFIG_HOME/difflab/secret_key)
  DIFFLAB_TEAM_MODE           1/true/yes: sign-in required
  DIFFLAB_RECONNECT_SESSIONS  closed browser tabs the dashboard keeps for a reconnect (32)
  DIFFLAB_COMPILE             0/false/no/off: never torch.compile (train.compile is ignored)
  DIFFLAB_COMPILE_CHAINS_AFTER_S  chain seconds a model runs eagerly before its chains compile (5)
  DIFFLAB_DRAWS_ON_CPU        1/true/yes: work on a GPU draws from the CPU generator's own stream
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _text(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def _positive(name: str, unit: str, *, zero: bool = False) -> float | None:
    """A positive number (or 0, with `zero`) from `name`, None when unset; ValueError naming
    it otherwise."""
    text = os.environ.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of {unit}, got {text!r}") from None
    if not (value >= 0 if zero else value > 0):  # NaN fails both
        least = "a number >= 0" if zero else "a positive number"
        raise ValueError(f"{name} must be {least} of {unit}, got {text!r}")
    return value


def _seconds(name: str, default: float) -> float:
    value = _positive(name, "seconds")
    return float(default) if value is None else value


def data_dir() -> Path:
    """The data folder (`DIFFLAB_DATA_DIR`, default `./.difflab`), as an absolute path."""
    return Path(_text("DIFFLAB_DATA_DIR", ".difflab")).expanduser().resolve()


def run_dir(run_id: str) -> Path:
    """A run's working folder on this host: `<data dir>/runs/<run id>`."""
    return data_dir() / "runs" / run_id


def database_url() -> str:
    """`DIFFLAB_DATABASE_URL`, or a SQLite file in the data folder."""
    return _text("DIFFLAB_DATABASE_URL") or f"sqlite:///{data_dir() / 'difflab.db'}"


def artifact_dir() -> Path:
    """`DIFFLAB_ARTIFACT_DIR`, or `<data dir>/artifacts`."""
    path = _text("DIFFLAB_ARTIFACT_DIR")
    return Path(path).expanduser().resolve() if path else data_dir() / "artifacts"


def datasets_root() -> Path:
    """Where MNIST / CIFAR-10 files are looked for: `DIFFLAB_DATASETS`, else ./datasets."""
    return Path(_text("DIFFLAB_DATASETS", "datasets"))


def redis_url() -> str:
    return _text("DIFFLAB_REDIS_URL", DEFAULT_REDIS_URL)


def redis_url_given() -> str | None:
    """`DIFFLAB_REDIS_URL` when set (an external broker), else None."""
    return _text("DIFFLAB_REDIS_URL") or None


def worker_device() -> str | None:
    """The device `difflab worker` announced (or forced), None when unset."""
    return _text("DIFFLAB_WORKER_DEVICE") or None


def worker_queues() -> list[str]:
    return [q for q in _text("DIFFLAB_WORKER_QUEUES", "gpu,cpu").split(",") if q]


def announce_worker(device: str, queues: list[str]) -> None:
    """Record a worker's device and queues for its child processes (they inherit them)."""
    os.environ["DIFFLAB_WORKER_DEVICE"] = device
    os.environ["DIFFLAB_WORKER_QUEUES"] = ",".join(queues)


def announce_concurrency(n: int) -> None:
    """Record a worker's --concurrency for its pool processes (torch threads per job)."""
    os.environ["DIFFLAB_WORKER_CONCURRENCY"] = str(n)


def worker_concurrency() -> int:
    return int(_text("DIFFLAB_WORKER_CONCURRENCY", "1"))


def torch_threads() -> tuple[str, str] | None:
    """(variable, value) of the torch thread count the operator asked for:
    `DIFFLAB_TORCH_THREADS`, else `OMP_NUM_THREADS`; None when neither is set."""
    for var in ("DIFFLAB_TORCH_THREADS", "OMP_NUM_THREADS"):
        value = _text(var).strip()
        if value:
            return var, value
    return None


DEFAULT_LEASE_S = 9.0  # heartbeats every 3 s; benchmarks/recovery.py measures the recovery
DEFAULT_RECONCILE_S = 2.0


def lease_s() -> float:
    return _seconds("DIFFLAB_LEASE_S", DEFAULT_LEASE_S)


def reconcile_s() -> float:
    return _seconds("DIFFLAB_RECONCILE_S", DEFAULT_RECONCILE_S)


def reconcile_grace_s() -> float:
    return _seconds("DIFFLAB_RECONCILE_GRACE_S", 10)


def train_time_limit_s() -> float:
    return _seconds("DIFFLAB_TRAIN_TIME_LIMIT_S", 72 * 3600)


def job_time_limit_s() -> float:
    return _seconds("DIFFLAB_JOB_TIME_LIMIT_S", 2 * 3600)


def max_run_gb() -> float | None:
    """`DIFFLAB_MAX_RUN_GB`: the most memory one run may need (None: diffusion.memory's)."""
    return _positive("DIFFLAB_MAX_RUN_GB", "GB")


DEFAULT_RECONNECT_SESSIONS = 32  # dashboard/sessions.py says why


def reconnect_sessions() -> int:
    """`DIFFLAB_RECONNECT_SESSIONS`: disconnected dashboard sessions kept for a reconnect."""
    value = _positive("DIFFLAB_RECONNECT_SESSIONS", "sessions")
    if value is None:
        return DEFAULT_RECONNECT_SESSIONS
    if value != int(value):
        raise ValueError(f"DIFFLAB_RECONNECT_SESSIONS must be a whole number, got {value}")
    return int(value)


def secret_key() -> str | None:
    return _text("DIFFLAB_SECRET_KEY") or None


def secret_key_file() -> str | None:
    return _text("DIFFLAB_SECRET_KEY_FILE") or None


def config_home() -> Path:
    """The user's configuration folder: `XDG_CONFIG_HOME`, else ~/.config."""
    return Path(_text("XDG_CONFIG_HOME", str(Path.home() / ".config"))).expanduser()


def compile_allowed() -> bool:
    """False where `DIFFLAB_COMPILE` is 0/false/no/off: every step and chain runs eagerly
    whatever a run's train.compile says (a machine without a C++ compiler, one-off commands
    in fresh processes); unset or anything else: train.compile decides."""
    return _text("DIFFLAB_COMPILE").strip().lower() not in ("0", "false", "no", "off")


def skip_guards_allowed() -> bool:
    """False where `DIFFLAB_SKIP_GUARDS` is 0/false/no/off: every compiled call evaluates all
    of torch.compile's guards (diffusion.nets.compiled.CompiledCall). The skipping mode is
    process-wide in torch: a program that runs compiled chains in several threads of one
    process should turn it off (the lab runs one job per worker process, and the dashboard
    runs no chains)."""
    return _text("DIFFLAB_SKIP_GUARDS").strip().lower() not in ("0", "false", "no", "off")


def compile_chains_after_s() -> float:
    """Seconds of eager chain work a model does in a process before its chains compile the
    network (`DIFFLAB_COMPILE_CHAINS_AFTER_S`, default 5; 0: at once): a compilation costs
    seconds, which a one-off chain of under a second never repays."""
    value = _positive("DIFFLAB_COMPILE_CHAINS_AFTER_S", "seconds", zero=True)
    return 5.0 if value is None else value


def draws_on_cpu() -> bool:
    """True where `DIFFLAB_DRAWS_ON_CPU` is 1/true/yes: training and chains on a GPU draw their
    noise from the seed's CPU stream (the same numbers as on a CPU, copied over at every step)
    instead of a generator on the GPU (diffusion.processes.base.drawing)."""
    return _text("DIFFLAB_DRAWS_ON_CPU").strip().lower() in ("1", "true", "yes")


def team_mode() -> bool:
    """True when sign-in is required (`DIFFLAB_TEAM_MODE=1`)."""
    return _text("DIFFLAB_TEAM_MODE").strip().lower() in ("1", "true", "yes")


def redact(url: str) -> str:
    """`url` with any password replaced by `***`, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}:***@{host}" if colon else url
