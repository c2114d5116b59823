"""`difflab` writing into a pipe whose reader has gone (`difflab show ID --json | grep -m1
state`) stops quietly with 141, as a shell reports SIGPIPE. Broken version caught: no
BrokenPipeError handler, which printed a traceback on every such call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `difflab show` made to print far more than a pipe holds, so the write fails once the
# reader has closed its end.
LONG_SHOW = """
from difflab import cli, cmd_jobs
def long_show(args):
    for _ in range(100_000):
        print("x" * 100)
cmd_jobs.cmd_show = long_show
raise SystemExit(cli.main(["show", "abc123"]))
"""


def test_a_closed_pipe_ends_the_command_without_a_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", LONG_SHOW],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
