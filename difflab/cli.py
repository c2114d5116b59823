"""`difflab`: one command line for the engine, the runs database, the workers and the launcher.

Each family of subcommands lives in its own module and registers itself here:
  difflab.cmd_engine     train, bound, sample, fetch, presets    (engine only, no services)
  difflab.cmd_posterior  denoise, inpaint                        (engine only, no services)
  difflab.cmd_jobs       worker, submit, runs, show, cancel, db  (store + queue)
  difflab.cmd_up         up                                      (the one-machine launcher)
A module exposes `register(subparsers)`; every subcommand sets `func(args) -> int`.
Errors meant for the user raise `difflab.errors.UserError`; they print as one line, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from difflab.errors import UserError

COMMAND_MODULES = (
    "difflab.cmd_engine",
    "difflab.cmd_posterior",
    "difflab.cmd_jobs",
    "difflab.cmd_up",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="difflab",
        description="Diffusion Lab: diffusion probabilistic models (Sohl-Dickstein et al. 2015).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that family is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"difflab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`difflab show ID --json | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141  # as a shell reports a pipe's writer killed by SIGPIPE
    except Exception as exc:
        if not getattr(exc, "one_line", False):  # a bug: keep its traceback
            raise
        print(f"difflab {args.command}: error: {exc}", file=sys.stderr)  # a corrupt file...
        return 2


if __name__ == "__main__":
    sys.exit(main())
