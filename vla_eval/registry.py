"""A small name -> factory registry shared by policies and env backends.

Adding a policy or backend is one ``register`` call in its own module (or an entry point
of an installed package, see :mod:`vla_eval.plugins`); the runner only ever looks names
up here, so it never needs editing for a new extension.

A name that is not registered may be ``"package.module:Class"``. That string comes from
files (a policy file's ``adapter:``, a suite's ``backend:``), so it is checked to name a
subclass of the registry's base class *before* anything is called: ``adapter: os:system``
must be refused, not run.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, TypeVar

from vla_eval.errors import ConfigError, UnknownNameError

T = TypeVar("T")


def import_object(spec: str, kind: str, known: list[str] | None = None) -> Any:
    """Import ``"module:attr"``; a missing module is an unknown name,
    a module that fails to import shows its own error."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise UnknownNameError(kind, spec, known or [])
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise UnknownNameError(kind, spec, known or []) from exc
        raise ConfigError(f"{kind} {spec!r}: importing module {module!r} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise ConfigError(f"{kind} {spec!r}: importing module {module!r} failed: {type(exc).__name__}: {exc}") from exc
    try:
        obj = mod
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as exc:
        raise ConfigError(f"{kind} {spec!r}: module {module!r} has no attribute {attr!r}") from exc
    return obj


def check_subclass(obj: Any, base: type | None, kind: str, spec: str) -> None:
    if base is None:
        return
    if not (isinstance(obj, type) and issubclass(obj, base)):
        what = obj.__name__ if isinstance(obj, type) else type(obj).__name__
        raise ConfigError(
            f"{kind} {spec!r} names {what}, which is not a {base.__module__}.{base.__name__} subclass; "
            f"use a registered name or 'module:Class' of a {base.__name__}"
        )


class Registry(Generic[T]):
    def __init__(self, kind: str, base: type | None = None):
        self.kind = kind
        self.base = base
        self._factories: dict[str, Callable[..., T] | str] = {}
        self._help: dict[str, str] = {}
        self._origin: dict[str, str] = {}

    def register(self, name: str, factory: Callable[..., T] | str, help: str = "", origin: str = "built-in") -> None:
        """Register ``factory`` (a callable, or ``"module:attr"`` imported on first use so heavy deps load lazily)."""
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._factories[name] = factory
        self._help[name] = help
        self._origin[name] = origin

    def names(self) -> list[str]:
        return sorted(self._factories)

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def origin(self, name: str) -> str:
        return self._origin.get(name, "")

    def target(self, name: str) -> str:
        """Where ``name`` points: ``"module:attr"`` (for messages; imports nothing)."""
        f = self._factories.get(name)
        if f is None or isinstance(f, str):
            return f or ""
        return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', repr(f))}"

    def __contains__(self, name: str) -> bool:
        return name in self._factories or ":" in name

    def get(self, name: str) -> Callable[..., T]:
        """Look up ``name``; an unregistered ``"package.module:Class"`` is imported and type-checked."""
        if name not in self._factories and ":" in name:
            obj = import_object(name, self.kind, self.names())
            check_subclass(obj, self.base, self.kind, name)
            return obj
        if name not in self._factories:
            raise UnknownNameError(self.kind, name, self.names())
        factory = self._factories[name]
        if isinstance(factory, str):
            obj = import_object(factory, self.kind, self.names())
            check_subclass(obj, self.base, self.kind, f"{name} ({factory})")
            factory = obj
            self._factories[name] = factory
        return factory

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)
