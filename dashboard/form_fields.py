"""The New run form's fields, read from the config schema (diffusion.config, config_options).

`field_spec(path, ...)` says how to show one config field: its widget (a choice, a whole
number, a number, a switch, a list of numbers, a list of names or text), choices, limits,
default and help text, all as the schema declares them, so that the form, `difflab submit`
and the worker agree on what is allowed. Torch-free and Streamlit-free.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, dataclass
from typing import Annotated, Any, Literal

from diffusion.config import RunConfig
from diffusion.config_checks import numeric_range
from diffusion.config_options import DATA_OPTIONS, NETWORK_OPTIONS

Widget = Literal["choice", "names", "int", "float", "bool", "list", "text"]
# Options that name files on the worker's disk: set by uploads and presets, not typed in
HIDDEN_OPTIONS = frozenset({"path", "root"})
JS_SAFE_INT = 2**53 - 1  # what a browser's number input can hold exactly


@dataclass(frozen=True)
class FieldSpec:
    """How to show one config field (`path`, e.g. "diffusion.T" or "data.options.sigma")."""

    path: str
    widget: Widget
    help: str
    default: Any = None
    choices: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None
    allowed: str = ""  # the range as the schema's messages write it, e.g. "(0.0, 0.5]"

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def _owner(path: str, data: str, network: str) -> tuple[type, str]:
    parts = path.split(".")
    if len(parts) == 1:
        return RunConfig, parts[0]
    if len(parts) == 3 and parts[1] == "options":
        table, kind = (DATA_OPTIONS, data) if parts[0] == "data" else (NETWORK_OPTIONS, network)
        return table[kind], parts[2]
    section = RunConfig.__pydantic_fields__[parts[0]].annotation
    return section, parts[1]


def _widget(annotation: Any) -> tuple[Widget, tuple[Any, ...]]:
    """The widget of a type, and its choices (a choice's, or a list of names' items)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _widget(args[0])
    if origin is Literal:
        return "choice", args
    if origin in (typing.Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        if len(real) == 1:
            return _widget(real[0])
        return "list", ()  # a side or [H, W]
    if origin is tuple:
        item = _widget(args[0]) if args else ("int", ())
        return ("names", item[1]) if item[0] == "choice" else ("list", ())
    if annotation is bool:
        return "bool", ()
    if annotation is int:
        return "int", ()
    if annotation is float:
        return "float", ()
    return "text", ()


def field_spec(path: str, data: str = "swissroll", network: str = "mlp") -> FieldSpec:
    """The spec of `path`; option paths are read for the given data set / network kind."""
    owner, name = _owner(path, data, network)
    info = owner.__pydantic_fields__[name]
    widget, choices = _widget(info.annotation)
    lo, hi, allowed = numeric_range(info) if widget in ("int", "float") else (None, None, "")
    help_text = info.description or ""
    if allowed:
        help_text = f"{help_text.rstrip('.')}. Allowed: {allowed}".lstrip(". ")
    default = info.default if info.default is not MISSING else None
    return FieldSpec(path, widget, help_text, default, choices, lo, hi, allowed)


def option_paths(section: str, kind: str) -> tuple[str, ...]:
    """The option fields the form shows for a data set or network kind."""
    table = DATA_OPTIONS if section == "data" else NETWORK_OPTIONS
    if kind not in table:  # an unknown kind: the schema reports it under its own field
        return ()
    names = [n for n in table[kind].__pydantic_fields__ if n not in HIDDEN_OPTIONS]
    return tuple(f"{section}.options.{n}" for n in names)


def to_widget_value(spec: FieldSpec, value: Any) -> Any:
    """A config value as its widget holds it (lists as "a, b" text, None as "")."""
    if spec.widget == "names":
        return list(value or ())
    if spec.widget == "list":
        if value is None:
            return ""
        items = value if isinstance(value, (list, tuple)) else [value]
        return ", ".join(str(v) for v in items)
    if spec.widget == "text" and value is None:
        return ""
    return value


def from_widget_value(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    """(config value, None), or (None, message) when a list's text does not parse."""
    if spec.widget == "list":
        parts = [
            p for p in str(value if value is not None else "").replace(" ", "").split(",") if p
        ]
        if spec.choices:  # names
            return parts, None
        try:
            items = [int(part) for part in parts]
        except ValueError:
            return None, f"must be whole numbers separated by commas, got {value!r}"
        return (items[0] if len(items) == 1 and spec.name == "size" else items), None
    if spec.widget == "names":
        return (list(value) or None) if value is not None else None, None
    if spec.widget == "text" and value == "":
        return None, None
    return value, None
