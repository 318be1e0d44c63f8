"""A small name -> factory registry shared by policies and env backends.

Adding a policy or backend is one ``register`` call in its own module; the runner only
ever looks names up here, so it never needs editing for a new extension.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

from vla_eval.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T] | str] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, factory: Callable[..., T] | str, help: str = "") -> None:
        """Register ``factory`` (a callable, or ``"module:attr"`` imported on first use so heavy deps load lazily)."""
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._factories[name] = factory
        self._help[name] = help

    def names(self) -> list[str]:
        return sorted(self._factories)

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def __contains__(self, name: str) -> bool:
        return name in self._factories or ":" in name

    def get(self, name: str) -> Callable[..., T]:
        """Look up ``name``; an unregistered ``"package.module:Class"`` is imported directly."""
        if name not in self._factories and ":" in name:
            try:
                module, _, attr = name.partition(":")
                return getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise UnknownNameError(self.kind, name, self.names()) from exc
        if name not in self._factories:
            raise UnknownNameError(self.kind, name, self.names())
        factory = self._factories[name]
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
            self._factories[name] = factory
        return factory

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)
