"""The dashboard's signing key, kept out of the shared data folder.

Workers mount the data folder (over NFS on other hosts), so a key there could be read by
anyone with a worker and used to forge sign-ins. The key comes from, in order:

  DIFFLAB_SECRET_KEY        the key itself (at least 32 characters)
  DIFFLAB_SECRET_KEY_FILE   a file holding it (a Docker secret, /run/secrets/...)
  ~/.config/difflab/secret_key   created (mode 0600) on first use, for one-machine labs

A key file inside the data or artifact folder is refused with a message that says why, and so
is an old `<data>/secret_key` left from an earlier version.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from diffusion import settings
from diffusion.settings import artifact_dir, data_dir

MIN_KEY = 32


class SigningKeyError(RuntimeError):
    """No usable signing key; the message says what to do."""


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _refuse_shared(path: Path) -> None:
    for folder in (data_dir(), artifact_dir()):
        if _inside(path, folder):
            raise SigningKeyError(
                f"the signing key file {path} is inside the shared data folder {folder}, "
                "which every worker mounts: anyone with a worker could read it and forge a "
                "sign-in. Keep it elsewhere (DIFFLAB_SECRET_KEY, or DIFFLAB_SECRET_KEY_FILE "
                "outside the data folder) and delete this copy."
            )


def _check(key: str, where: str) -> bytes:
    key = key.strip()
    if len(key) < MIN_KEY:
        raise SigningKeyError(
            f"the signing key from {where} has {len(key)} characters; use at least {MIN_KEY} "
            "(for example `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return key.encode()


def _default_file() -> Path:
    return settings.config_home() / "difflab" / "secret_key"


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # first writer wins; the others read its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def signing_key() -> bytes:
    """The key, or SigningKeyError saying what is wrong and how to fix it."""
    legacy = data_dir() / "secret_key"
    if legacy.exists():
        _refuse_shared(legacy)
    env = settings.secret_key()
    if env:
        return _check(env, "DIFFLAB_SECRET_KEY")
    named = settings.secret_key_file()
    path = Path(named).expanduser() if named else _default_file()
    _refuse_shared(path)
    if not path.exists():
        if named:
            raise SigningKeyError(f"DIFFLAB_SECRET_KEY_FILE names {path}, which does not exist")
        _create(path)
    try:
        return _check(path.read_text(), str(path))
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key file {path}: {exc}") from None
