"""Builders registered by name: data sets (diffusion.data), their test splits and network
kinds (diffusion.nets) each keep one `Registry`, so that an unknown or unavailable name is
refused the same way everywhere, as a ConfigError on the config field that named it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from diffusion.config_checks import ConfigError

B = TypeVar("B", bound=Callable)


class Registry(Generic[B]):
    """Builders under names. `field`: the config field a name comes from; `missing`: the
    message for a name with no builder, with {name} and {names} (the registered ones);
    `allowed`, `allowed_label`: the names that may be registered, and where they are listed."""

    def __init__(
        self,
        field: str,
        missing: str,
        allowed: tuple[str, ...] | None = None,
        allowed_label: str = "",
    ) -> None:
        self.field, self.missing = field, missing
        self.allowed, self.allowed_label = allowed, allowed_label
        self._builders: dict[str, B] = {}

    def register(self, name: str) -> Callable[[B], B]:
        """Decorator: register a builder under `name` (one of `allowed`, when given)."""
        if self.allowed is not None and name not in self.allowed:
            raise ValueError(f"{name!r} is not in {self.allowed_label}; add it there first")

        def deco(builder: B) -> B:
            self._builders[name] = builder
            return builder

        return deco

    def add(self, name: str, builder: B) -> None:
        self.register(name)(builder)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._builders))

    def get(self, name: str) -> B:
        """The builder for `name`, or ConfigError on `field` listing the registered names."""
        builder = self._builders.get(name)
        if builder is None:
            names = ", ".join(self.names())
            raise ConfigError(self.field, self.missing.format(name=repr(name), names=names))
        return builder
