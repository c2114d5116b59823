"""Process supervision for `difflab up`: start children, wait for them, stop them in order.

Each child runs in its own session (so a Ctrl-C in the terminal reaches only `difflab up`, which
then stops the children in order) and writes stdout and stderr to `<data>/logs/<name>.log`.
On Linux a child also gets SIGTERM if `difflab up` itself dies without cleaning up.
Children are stopped stage by stage, highest first (dashboard and workers, then Redis): each
gets SIGTERM and its grace period, then SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1
POLL_S = 0.2


class Interrupted(Exception):
    """A stop was requested (Ctrl-C or SIGTERM) while waiting."""


class ChildFailed(Exception):
    """A supervised child exited or did not become ready; the message says which."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


def spawn(
    argv: list[str],
    log_path: Path,
    env: dict[str, str],
    *,
    append: bool = False,
    **popen: object,
) -> subprocess.Popen[bytes]:
    """`argv` started in a session of its own (a Ctrl-C in the terminal does not reach it; a
    killpg of its pid reaches it and its children), stdout and stderr written to `log_path`
    (appended with `append`). `popen`: further subprocess.Popen arguments (cwd, stdin, ...)."""
    with log_path.open("ab" if append else "wb") as log:
        return subprocess.Popen(  # type: ignore[call-overload]
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, **popen
        )


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stage: int
    grace_s: float

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self, since: int = 0) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(since)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""


@dataclass
class Supervisor:
    """Starts children, notices a dead one, and stops all of them on request."""

    log_dir: Path
    say: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)
    stop_requested: bool = False
    hurry: bool = False

    # signals ----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.stop_requested:
            self.hurry = True  # a second Ctrl-C: do not wait for graceful exits
            return
        self.stop_requested = True

    def check(self) -> None:
        """Raise Interrupted if a stop was requested, ChildFailed if a child has exited."""
        if self.stop_requested:
            raise Interrupted()
        dead = self.dead_child()
        if dead is not None:
            raise ChildFailed(self.death_message(dead))

    # starting ---------------------------------------------------------------------------
    def start(
        self, name: str, argv: list[str], env: dict[str, str], *, stage: int, grace_s: float
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        process = spawn(
            argv,
            log_path,
            env,
            append=True,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # no threads here
        )
        child = Child(name, process, log_path, stage, grace_s)
        self.children.append(child)
        return child

    def wait_until(
        self, child: Child, ready: Callable[[], bool], timeout_s: float, what: str
    ) -> None:
        """Poll `ready()` until true; fail if `child` (or any child) dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check()
            if ready():
                return
            if time.monotonic() > deadline:
                raise ChildFailed(
                    f"{child.name} did not become ready ({what}) within {timeout_s:.0f} s; "
                    f"its log is {child.log_path}\n{child.log_tail()}"
                )
            time.sleep(POLL_S)

    def run_once(self, name: str, argv: list[str], env: dict[str, str], timeout_s: float) -> None:
        """Run a short command (a migration) to completion as a child; fail on non-zero exit."""
        child = self.start(name, argv, env, stage=9, grace_s=5)
        try:
            deadline = time.monotonic() + timeout_s
            while child.alive():
                if self.stop_requested:
                    raise Interrupted()
                if time.monotonic() > deadline:
                    raise ChildFailed(f"{name} took longer than {timeout_s:.0f} s")
                time.sleep(POLL_S)
            if child.process.returncode != 0:
                raise ChildFailed(
                    f"{name} failed (exit {child.process.returncode}); "
                    f"its log is {child.log_path}\n{child.log_tail()}"
                )
        finally:
            if child.alive():
                self._stop_group([child])
            self.children.remove(child)

    # watching ---------------------------------------------------------------------------
    def dead_child(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def death_message(self, child: Child) -> str:
        code = child.process.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        tail = child.log_tail()
        return f"{child.name} (pid {child.pid}) {how}; its log is {child.log_path}\n{tail}"

    def wait_for_stop_or_death(self) -> Child | None:
        """Block until a stop is requested (None) or a child exits (that child)."""
        while not self.stop_requested:
            dead = self.dead_child()
            if dead is not None:
                return dead
            time.sleep(POLL_S)
        return None

    # stopping ---------------------------------------------------------------------------
    def stop_all(self) -> None:
        """Stop children stage by stage, highest stage first; each gets SIGTERM then SIGKILL."""
        for stage in sorted({c.stage for c in self.children}, reverse=True):
            group = [c for c in self.children if c.stage == stage and c.alive()]
            if group:
                self._stop_group(group)
        self.children.clear()

    def _stop_group(self, group: list[Child]) -> None:
        for child in group:
            self.say(f"  stopping {child.name} (pid {child.pid})")
            _signal(child, signal.SIGTERM, group=False)
        deadline = time.monotonic() + max(c.grace_s for c in group)
        while any(c.alive() for c in group):
            hurried = self.hurry and all(c.stage > 0 for c in group)  # never rush Redis
            if hurried or time.monotonic() > deadline:
                for child in group:
                    if child.alive():
                        self.say(f"  {child.name} did not stop in time: killing it")
                        _signal(child, signal.SIGKILL, group=True)
                break
            time.sleep(POLL_S)
        for child in group:
            try:
                child.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.say(f"  {child.name} (pid {child.pid}) is still running")
            _signal(child, signal.SIGKILL, group=True)  # leftovers of its group, if any


def _signal(child: Child, sig: int, *, group: bool) -> None:
    """Signal the child, or its whole process group (it leads its own session).

    SIGTERM goes to the child alone, so that a Celery worker runs its own shutdown of its
    pool; SIGKILL goes to the group, so that nothing is left behind.
    """
    try:
        if group:
            os.killpg(child.pid, sig)
        else:
            child.process.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass
