"""The run configuration's error type and the reading of pydantic's errors into it.

`ConfigError` carries every problem found at once, each as (dotted field path, message):
"diffusion.T: must be in [2, 100000], got 1". Validators of the schema (diffusion.config,
diffusion.config_options) raise `ConfigError` with field paths relative to their section;
`config_error` turns pydantic's `ValidationError` into one `ConfigError`, prefixing those
paths and wording pydantic's own errors the way this project always has ("must be in [lo,
hi], got v"). Torch-free, like the schema.
"""

from __future__ import annotations

import functools
import json
import math
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import annotated_types as at
from pydantic import ConfigDict, Field, Strict, ValidationError
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]  # ints are taken as floats
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
OptionValue = Any  # JSON scalars, or tuples of them
Options = tuple[tuple[str, OptionValue], ...]
Problem = tuple[str, str]


class ConfigError(ValueError):
    """One or more config values are invalid.

    `problems` lists (dotted field, message) for every problem found; `field` and `message`
    are the first one's (what older callers read).
    """

    def __init__(self, field: str, message: str = "", problems: Iterable[Problem] = ()) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems) or ((field, message),)
        self.field, self.message = self.problems[0]
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.problems))

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> ConfigError:
        problems = tuple(problems)
        return cls(problems[0][0], problems[0][1], problems)

    def prefixed(self, prefix: str) -> ConfigError:
        return ConfigError.of((_join(prefix, f), m) for f, m in self.problems)

    def as_dict(self) -> dict[str, str]:
        """{field: message}, the first message of each field."""
        out: dict[str, str] = {}
        for f, m in self.problems:
            out.setdefault(f, m)
        return out


def schema(cls: type) -> type:
    """A frozen pydantic dataclass (no unknown fields) whose constructor raises ConfigError
    listing every problem, instead of pydantic's ValidationError."""
    cls = dataclass(frozen=True, config=ConfigDict(extra="forbid"))(cls)
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(exc, cls) from None

    cls.__init__ = __init__
    return cls


def _join(*parts: Any) -> str:
    return ".".join(str(p) for p in parts if p != "")


# ---------------------------------------------------------------- pydantic's errors, reworded
def _constraints(info: Any) -> list[Any]:
    """The annotated_types constraints of a field, including those on its items' type."""
    found = list(getattr(info, "metadata", ()))
    stack = [getattr(info, "annotation", None)]
    while stack:
        tp = stack.pop()
        for arg in typing.get_args(tp):
            if isinstance(arg, FieldInfo):
                found += arg.metadata
            elif isinstance(arg, at.BaseMetadata):
                found.append(arg)
            else:
                stack.append(arg)
    return found


def numeric_range(info: Any) -> tuple[float | None, float | None, str]:
    """(lo, hi, "[lo, hi]") of a numeric field from its Field(ge=.., lt=..) constraints;
    open ends in round brackets, "" when it has none."""
    lo = hi = None
    left, right = "(-inf", "inf)"
    for m in _constraints(info):
        if isinstance(m, at.Ge):
            lo, left = m.ge, f"[{m.ge}"
        elif isinstance(m, at.Gt):
            lo, left = m.gt, f"({m.gt}"
        elif isinstance(m, at.Le):
            hi, right = m.le, f"{m.le}]"
        elif isinstance(m, at.Lt):
            hi, right = m.lt, f"{m.lt})"
    return lo, hi, ("" if lo is None and hi is None else f"{left}, {right}")


def _allowed_names(cls: Any) -> str:
    return ", ".join(sorted(getattr(cls, "__pydantic_fields__", {})))


def _message(err: Mapping[str, Any], cls: Any, name: str) -> str:
    kind, value = err["type"], err.get("input")
    span = numeric_range(getattr(cls, "__pydantic_fields__", {}).get(name))[2]
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return (
            f"must be an integer in {span}, got {value!r}"
            if span
            else f"must be an integer, got {value!r}"
        )
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {value!r}"
    if kind == "finite_number":
        return f"must be a finite number, got {value!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be in {span}, got {value!r}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected}; got {value!r}"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"unknown field; allowed: {_allowed_names(cls)}"
    if kind == "bool_type":
        return f"must be true or false, got {value!r}"
    if kind == "string_type":
        return f"must be a string, got {value!r}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, got {value!r}"
    if kind in ("dataclass_type", "dataclass_exact_type", "model_type", "dict_type"):
        return f"must be an object, got {type(value).__name__}"
    if kind == "missing":
        return "is required"
    return str(err.get("msg", kind))


def _field_class(root: Any, loc: tuple[Any, ...]) -> tuple[Any, str]:
    """The dataclass that owns the last named field of `loc`, and that field's name."""
    cls, owner, name = root, root, ""
    for part in loc:
        owner, name = cls, str(part)
        info = getattr(cls, "__pydantic_fields__", {}).get(name)
        cls = getattr(info, "annotation", None) if info is not None else None
    return owner, name


def config_error(exc: ValidationError, root: Any, prefix: str = "") -> ConfigError:
    """Every error of `exc` (raised validating `root`) as one ConfigError with field paths."""
    names = list(getattr(root, "__pydantic_fields__", {}))
    problems: list[Problem] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if loc and isinstance(loc[0], int) and loc[0] < len(names):  # a positional argument
            loc = (names[loc[0]], *loc[1:])
        loc = tuple(p for p in loc if not isinstance(p, int))  # a list's item: the list's path
        inner = err.get("ctx", {}).get("error")
        if isinstance(inner, ConfigError):  # raised by one of our validators: relative paths
            problems += [(_join(prefix, *loc, f), m) for f, m in inner.problems]
            continue
        owner, name = _field_class(root, loc)
        problems.append((_join(prefix, *loc), _message(err, owner, name)))
    return ConfigError.of(problems)


# ---------------------------------------------------------------------------- options
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
        out[key] = _freeze_value(_join(name, key), value)
    return tuple(sorted(out.items()))


def thaw(value: Any) -> Any:
    """Tuples back to lists, for JSON."""
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


class OptionsMixin:
    options: Options

    def option(self, key: str, default: Any = None) -> Any:
        """The option `key` as given (lists come back as tuples), or `default`."""
        return dict(self.options).get(key, default)

    @property
    def options_dict(self) -> dict[str, Any]:
        return {k: thaw(v) for k, v in self.options}


# ---------------------------------------------------------------------------- overrides
def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return [json.loads(p) for p in parts]
        except json.JSONDecodeError:
            return parts
    return text


def set_path(raw: dict[str, Any], key: str, value: Any, sections: Iterable[str]) -> None:
    """Set "section.field" or "section.options.key" of a config's dict to `value`."""
    parts = key.split(".")
    if parts == ["name"]:
        raw["name"] = value if isinstance(value, str) else str(value)
        return
    if len(parts) < 2 or parts[0] not in sections:
        raise ConfigError(
            key, f"unknown field; use one of {', '.join(sections)} followed by .field (or 'name')"
        )
    section = raw[parts[0]]
    if parts[1] == "options" and len(parts) == 3:
        if "options" not in section:
            raise ConfigError(key, f"section {parts[0]} has no options")
        section["options"] = {**section["options"], parts[2]: value}
        return
    if len(parts) != 2:
        raise ConfigError(key, "expected section.field or section.options.key")
    if parts[1] not in section:
        raise ConfigError(key, f"unknown field; allowed: {', '.join(sorted(section))}")
    if parts[1] == "hidden" and isinstance(value, int):
        value = [value]
    section[parts[1]] = value
