"""`difflab worker | submit | runs | show | cancel | db`: the runs database and the queue.

Errors for the user (a bad config, an unreachable broker or database) print as one line that
names the field or the URL; nothing is queued when the config is bad.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from difflab.cmd_engine import add_config_arguments
from difflab.errors import UserError


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the store's and broker's errors into one-line UserErrors."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from db.errors import DatabaseUnavailable, StoreError
    from diffusion.settings import database_url, redact
    from worker.broker import BrokerUnavailable

    try:
        yield
    except (DatabaseUnavailable, BrokerUnavailable) as exc:
        raise UserError(str(exc)) from None
    except StoreError as exc:
        raise UserError(str(exc)) from None
    except (ArgumentError, NoSuchModuleError) as exc:
        raise UserError(f"bad database URL {redact(database_url())}: {exc}") from None


def _store(*, migrate: bool = True) -> Any:
    from db.store import Store
    from diffusion.settings import redact

    store = Store.from_env()
    store.check()
    if not store.is_current():
        if migrate and store.dialect == "sqlite":
            store.upgrade()
        else:
            raise UserError(
                f"the database at {redact(store.url)} is not migrated; run `difflab db upgrade`"
            )
    return store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("worker", help="run a worker (announces its host and device)")
    p.add_argument("--queues", default="gpu,cpu", help="comma-separated: gpu,cpu (default both)")
    p.add_argument(
        "--concurrency", type=int, default=1, help="jobs at once (default 1: one job per GPU)"
    )
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("submit", help="queue a training run; prints its id")
    add_config_arguments(p)
    p.add_argument("--name")
    p.add_argument("--tag", dest="tags", action="append", default=[])
    p.add_argument("--visibility", choices=("private", "team"), default="private")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("runs", help="list runs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--state", action="append", default=None)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="a run's state, progress and latest bound")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("cancel", help="cancel a run (its checkpoint is kept)")
    p.add_argument("run_id", metavar="RUN_ID")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("export", help="a run's metrics as CSV or JSON (stdout or --out)")
    p.add_argument("run_id")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="migrate the database to the newest schema")
    up.set_defaults(func=cmd_db_upgrade)
    cur = dbsub.add_parser("current", help="print the current and newest migration")
    cur.set_defaults(func=cmd_db_current)


def cmd_worker(args: argparse.Namespace) -> int:
    from worker import main

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if args.concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    with _user_errors():
        try:
            return main.run(queues, concurrency=args.concurrency, loglevel=args.loglevel)
        except ValueError as exc:
            raise UserError(str(exc)) from None


def load_run_config(spec: str, overrides: list[str]) -> Any:
    """A RunConfig from a preset name or a JSON file, with overrides; UserError naming the
    field when something is wrong."""
    from diffusion.config import ConfigError
    from diffusion.presets import load_config

    try:
        return load_config(spec, overrides)
    except ConfigError as exc:
        raise UserError(f"bad config: {exc}") from None


def cmd_submit(args: argparse.Namespace) -> int:
    from worker import api

    config = load_run_config(args.config, args.overrides)
    preset = None if Path(args.config).is_file() else args.config
    with _user_errors():
        from worker import broker
        from worker.app import redis_url

        broker.check(redis_url())  # before anything is written
        store = _store()
        run = api.submit_run(
            store,
            config,
            store.local_user(),
            preset=preset,
            visibility=args.visibility,
            tags=args.tags,
            name=args.name,
        )
    print(run.id)
    return 0


def _run_dict(run: Any, latest: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {
        "id": run.id,
        "name": run.name,
        "state": run.state,
        "owner": run.owner,
        "preset": run.preset,
        "progress": round(run.progress, 4),
        "step": run.step,
        "total_steps": run.total_steps,
        "checkpoint_step": run.checkpoint_step,
        "host": run.host,
        "device": run.device,
        "tags": list(run.tags),
        "visibility": run.visibility,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "final_bound_bits": run.final_bound_bits,
        "final_bound_stderr": run.final_bound_stderr,
    }
    if latest is not None:
        out["latest"] = latest
        out["config"] = run.config
    return out


def cmd_runs(args: argparse.Namespace) -> int:
    from db.access import SYSTEM

    with _user_errors():
        runs = _store().list_runs(viewer=SYSTEM, states=args.state, limit=args.limit)
    if args.json:
        json.dump([_run_dict(r) for r in runs], sys.stdout, indent=2)
        print()
        return 0
    print(f"{'ID':<13} {'STATE':<10} {'PROGRESS':>8}  {'DEVICE':<8} NAME")
    for r in runs:
        print(f"{r.id:<13} {r.state:<10} {r.progress:>8.1%}  {(r.device or '-'):<8} {r.name}")
    return 0


def _latest_bound(store: Any, run_id: str) -> dict[str, Any]:
    from db.access import SYSTEM

    latest = store.latest_metrics(run_id, viewer=SYSTEM)
    out: dict[str, Any] = {}
    for name in (
        "k_holdout_bits",
        "k_holdout_stderr_bits",
        "k_train_bits",
        "k_minus_lnull_bits",
        "loss_bits",
    ):
        if name in latest:
            out[name] = {"step": latest[name].step, "value": latest[name].value}
    return out


def cmd_show(args: argparse.Namespace) -> int:
    from db.access import SYSTEM

    with _user_errors():
        store = _store()
        run = store.get_run(args.run_id, viewer=SYSTEM)
        latest = _latest_bound(store, run.id)
    if args.json:
        json.dump(_run_dict(run, latest), sys.stdout, indent=2, default=str)
        print()
        return 0
    print(f"run {run.id}  {run.name}")
    print(f"  state     {run.state}" + (f"  ({run.error})" if run.error else ""))
    print(
        f"  progress  {run.progress:.1%}  step {run.step}/{run.total_steps}"
        f"  checkpoint {run.checkpoint_step if run.checkpoint_step is not None else '-'}"
    )
    print(f"  where     {run.host or '-'} on {run.device or '-'}")
    bound = latest.get("k_holdout_bits")
    if bound:
        se = latest.get("k_holdout_stderr_bits", {}).get("value")
        se_text = f" +- {se:.4f}" if se is not None else ""
        print(
            f"  bound     K(holdout) = {bound['value']:.4f}{se_text} bits at step {bound['step']}"
        )
    else:
        print("  bound     (none yet)")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from worker import api

    with _user_errors():
        run = api.cancel(_store(), args.run_id)
    print(f"{run.id} {run.state}{' (cancel requested)' if run.cancel_requested else ''}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from db.access import SYSTEM
    from db.export import metrics_csv, metrics_json

    with _user_errors():
        store = _store()
        fn = metrics_csv if args.format == "csv" else metrics_json
        text = fn(store, args.run_id, viewer=SYSTEM)
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from diffusion.settings import redact

    with _user_errors():
        from db.store import Store

        store = Store.from_env()
        store.check()
        store.upgrade()
    print(f"database at {redact(store.url)} is at the newest schema")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    from db.migrate import current_revision, head_revision
    from db.store import Store

    with _user_errors():
        store = Store.from_env()
        store.check()
        print(f"current {current_revision(store.engine)}, newest {head_revision()}")
    return 0
