"""Validation helpers of the run configuration (diffusion.config): the error type, value
checks that name the field and what is allowed, and frozen, JSON-safe option mappings.

Standard library only, like diffusion.config.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

OptionValue = Any  # JSON scalars, or tuples of them
Options = tuple[tuple[str, OptionValue], ...]


class ConfigError(ValueError):
    """A config value is invalid. `field` is its dotted name; the message says what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def prefixed(self, prefix: str) -> ConfigError:
        return ConfigError(f"{prefix}.{self.field}", self.message)


# ---------------------------------------------------------------------------- checks
def _int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be in [{lo}, {hi}], got {value}")


def _float(
    name: str, value: Any, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value}")
    lo_ok = value > lo if open_lo else value >= lo
    hi_ok = value < hi if open_hi else value <= hi
    if not (lo_ok and hi_ok):
        lb, rb = ("(" if open_lo else "["), (")" if open_hi else "]")
        raise ConfigError(name, f"must be in {lb}{lo}, {hi}{rb}, got {value}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


def _freeze_value(name: str, value: Any) -> OptionValue:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(name, f"must be a finite number, got {value}")
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(name, v) for v in value)
    raise ConfigError(name, f"must be a JSON scalar or a list of them, got {type(value).__name__}")


def freeze_options(
    name: str, options: Mapping[str, Any] | Iterable[tuple[str, Any]] | None
) -> Options:
    """Options as a sorted tuple of (key, value) pairs: hashable, frozen, JSON-safe."""
    if options is None:
        return ()
    items = options.items() if isinstance(options, Mapping) else options
    out = {}
    for key, value in items:
        if not isinstance(key, str) or not key:
            raise ConfigError(name, f"option names must be non-empty strings, got {key!r}")
        out[key] = _freeze_value(f"{name}.{key}", value)
    return tuple(sorted(out.items()))


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _coerce_floats(obj: Any) -> None:
    """Store float fields as floats (JSON may give 1 for 1.0), after validation."""
    for f in dataclasses.fields(obj):
        if f.type == "float":
            object.__setattr__(obj, f.name, float(getattr(obj, f.name)))


class _OptionsMixin:
    options: Options

    def option(self, key: str, default: Any = None) -> Any:
        """The option `key` (lists come back as tuples), or `default`."""
        return dict(self.options).get(key, default)

    @property
    def options_dict(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.options}
