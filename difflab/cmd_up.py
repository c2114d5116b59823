"""`difflab up`: the whole lab on one machine, in one command; Ctrl-C stops all of it.

In order: the embedded Redis (unless `DIFFLAB_REDIS_URL` is set), the database migration
(SQLite in the data folder unless `DIFFLAB_DATABASE_URL` is set), N workers (each waited for
until it announces itself), then the Streamlit dashboard (waited for until its health endpoint
answers). It prints what runs where, then watches: if a child dies it says which and stops the
rest; on Ctrl-C or SIGTERM it stops the dashboard and the workers (giving workers time to
checkpoint), then Redis, and exits.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from difflab import services
from difflab.errors import UserError
from difflab.launcher import Child, ChildFailed, Interrupted, Supervisor
from diffusion import settings

WORKER_READY = re.compile(r"\bready\b", re.IGNORECASE)
WORKER_DEVICE = re.compile(r"\bdevice[ =:]+([a-z]+(?::\d+)?)", re.IGNORECASE)
REDIS_TIMEOUT_S = 20.0
MIGRATE_TIMEOUT_S = 300.0
WORKER_TIMEOUT_S = 180.0
DASHBOARD_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    port: int
    host: str
    workers: int
    redis_port: int | None
    worker_grace_s: float


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "up",
        help="run the lab on this machine: Redis, workers and the dashboard (Ctrl-C stops it)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data folder: database, artifacts, Redis files, logs "
        "(default: $DIFFLAB_DATA_DIR or ./.difflab)",
    )
    p.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501)")
    p.add_argument(
        "--host",
        default=services.LOCALHOST,
        help="address the dashboard listens on (default 127.0.0.1; 0.0.0.0 for the network)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="number of worker processes (default 1; 0 = none)"
    )
    p.add_argument(
        "--redis-port",
        type=int,
        default=None,
        help="port of the embedded Redis (default 6379 if free, else any free port)",
    )
    p.add_argument(
        "--worker-grace",
        type=float,
        default=60.0,
        help="seconds a worker gets to checkpoint and exit on Ctrl-C (default 60)",
    )
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> UpOptions:
    data_dir = args.data_dir or settings.data_dir()
    if args.workers < 0:
        raise UserError(f"--workers must be 0 or more, not {args.workers}")
    if args.worker_grace < 0:
        raise UserError(f"--worker-grace must be 0 or more seconds, not {args.worker_grace}")
    return UpOptions(
        data_dir=data_dir,
        port=args.port,
        host=args.host,
        workers=args.workers,
        redis_port=args.redis_port,
        worker_grace_s=args.worker_grace,
    )


def run(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    data_dir = services.prepare_data_dir(opts.data_dir)
    lock = _lock_data_dir(data_dir)
    try:
        services.require_free_port(opts.port, opts.host, "dashboard", "--port")
        external = settings.redis_url_given()
        if external and not services.redis_ping(external, timeout_s=3):
            where = services.redact_url(external)
            raise UserError(
                f"cannot reach Redis at {where} (DIFFLAB_REDIS_URL); unset it to "
                "use the embedded one"
            )
        redis_port = None if external else _pick_redis_port(opts)
        return Lab(opts, data_dir).run(redis_port)
    finally:
        lock.close()


def _lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold `<data>/up.lock` while running: two launchers on one data folder would collide."""
    lock = (data_dir / "up.lock").open("a+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise UserError(
            f"another `difflab up` is already running on the data folder {data_dir}"
        ) from None
    return lock


def _pick_redis_port(opts: UpOptions) -> int:
    if opts.redis_port is not None:
        services.require_free_port(opts.redis_port, services.LOCALHOST, "Redis", "--redis-port")
        return opts.redis_port
    if services.port_is_free(services.DEFAULT_REDIS_PORT):
        return services.DEFAULT_REDIS_PORT
    return services.free_port()


class Lab:
    """One run of `difflab up`: starts the children in order, watches them, stops them."""

    def __init__(self, opts: UpOptions, data_dir: Path) -> None:
        self.opts = opts
        self.data_dir = data_dir
        self.sup = Supervisor(log_dir=data_dir / "logs", say=_say)
        self.env = dict(os.environ, DIFFLAB_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        self.lines: list[str] = []

    def run(self, redis_port: int | None) -> int:
        self.sup.install_signal_handlers()
        _say(f"difflab up: data folder {self.data_dir}")
        try:
            self.start_redis(redis_port)
            self.migrate()
            self.start_workers(self.opts.workers)
            self.start_dashboard()
            self.print_summary()
            dead = self.sup.wait_for_stop_or_death()
            if dead is not None:
                raise ChildFailed(self.sup.death_message(dead))
            _say("difflab up: stopping (Ctrl-C again to stop the workers at once)")
            return 0
        except Interrupted:
            _say("difflab up: interrupted; stopping what was started")
            return 130
        except ChildFailed as exc:
            _say(f"difflab up: error: {exc}")
            _say("difflab up: stopping the rest")
            return 1
        finally:
            self.sup.stop_all()
            _say("difflab up: stopped")

    def start_redis(self, port: int | None) -> None:
        if port is None:
            url = settings.redis_url()  # DIFFLAB_REDIS_URL, checked by run()
            self.lines.append(f"  redis      {services.redact_url(url)}  (DIFFLAB_REDIS_URL)")
            return
        url = services.redis_url(port)
        redis_dir = self.data_dir / "redis"
        child = self.sup.start(
            "redis", services.redis_server_argv(port, redis_dir), self.env, stage=0, grace_s=20
        )
        self.sup.wait_until(child, lambda: services.redis_ping(url), REDIS_TIMEOUT_S, "PING")
        self.env["DIFFLAB_REDIS_URL"] = url
        self.lines.append(
            f"  redis      {url}  (embedded, append-only in {redis_dir}, pid {child.pid})"
        )

    def migrate(self) -> None:
        argv = [sys.executable, "-m", "difflab", "db", "upgrade"]
        self.sup.run_once("migrate", argv, self.env, MIGRATE_TIMEOUT_S)
        self.lines.append(f"  database   {_database_description(self.env)}  (migrated)")

    def start_workers(self, count: int) -> None:
        """Start `count` workers at once, then wait for each one's announcement."""
        argv = [sys.executable, "-m", "difflab", "worker"]
        started: list[tuple[Child, int]] = []
        for index in range(1, count + 1):
            child = self.sup.start(
                f"worker-{index}", argv, self.env, stage=1, grace_s=self.opts.worker_grace_s
            )
            started.append((child, child.log_path.stat().st_size))
        for child, offset in started:
            self.sup.wait_until(
                child,
                lambda c=child, o=offset: WORKER_READY.search(c.log_text(o)) is not None,
                WORKER_TIMEOUT_S,
                "its announcement",
            )
            device = WORKER_DEVICE.search(child.log_text(offset))
            on = f"on {device.group(1)}, " if device else ""
            self.lines.append(
                f"  {child.name:<10} ready ({on}pid {child.pid}, log {child.log_path})"
            )

    def start_dashboard(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(services.dashboard_app()),
            "--server.port",
            str(self.opts.port),
            "--server.address",
            self.opts.host,
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--client.toolbarMode",
            "minimal",  # no developer menu (Deploy, Rerun on save) for the lab's users
        ]
        child: Child = self.sup.start("dashboard", argv, self.env, stage=1, grace_s=10)
        health = f"http://127.0.0.1:{self.opts.port}/_stcore/health"
        if self.opts.host not in ("127.0.0.1", "0.0.0.0", "localhost"):
            health = f"http://{self.opts.host}:{self.opts.port}/_stcore/health"
        self.sup.wait_until(
            child, lambda: services.http_ok(health), DASHBOARD_TIMEOUT_S, "/_stcore/health"
        )
        self.lines.append(f"  dashboard  {self.dashboard_url}  (pid {child.pid})")

    @property
    def dashboard_url(self) -> str:
        host = "localhost" if self.opts.host in ("127.0.0.1", "0.0.0.0") else self.opts.host
        return f"http://{host}:{self.opts.port}"

    def print_summary(self) -> None:
        _say("difflab up: running")
        for line in self.lines:
            _say(line)
        if self.opts.workers == 0:
            _say("  workers    none (--workers 0): jobs wait in the queue")
        _say(f"  logs       {self.data_dir / 'logs'}")
        _say(f"Open {self.dashboard_url} in a browser. Ctrl-C stops everything.")
        _say("To use the lab from another shell:")
        _say(f"  export DIFFLAB_DATA_DIR={self.data_dir}")
        _say(f"  export DIFFLAB_REDIS_URL={services.redact_url(self.env['DIFFLAB_REDIS_URL'])}")


def _database_description(env: dict[str, str]) -> str:
    url = env.get("DIFFLAB_DATABASE_URL")
    if url:
        return f"{services.redact_url(url)}  (DIFFLAB_DATABASE_URL)"
    return f"sqlite:///{Path(env['DIFFLAB_DATA_DIR']) / 'difflab.db'}"


def _say(line: str) -> None:
    print(line, flush=True)
