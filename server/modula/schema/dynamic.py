"""Strawberry types and resolvers made at runtime, for schemas whose shape comes from data.

Strawberry merges two classes with the same module and qualname without a word, so every class
made here gets a qualname unique to its build (`<build id>.<GraphQL name>`); the builder also
checks GraphQL names for collisions itself. Resolvers get an explicit signature so Strawberry
reads their arguments as if they were written by hand.
"""

from __future__ import annotations

import inspect
import itertools
import keyword
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

_builds = itertools.count(1)
MODULE = __name__  # a real module: Strawberry reads its namespace


def python_name(graphql_name: str) -> str:
    """A Python identifier for a GraphQL name (`from` -> `from_`)."""
    return graphql_name + "_" if keyword.iskeyword(graphql_name) else graphql_name


def resolve_default(source: Any, name: str) -> Any:
    """Strawberry's default field resolver, extended to plain rows (dicts) from SQL and Lua."""
    if isinstance(source, Mapping):
        if name in source:
            return source[name]
        return source.get(name[:-1]) if name.endswith("_") else None
    return getattr(source, name)


class TypeFactory:
    """Makes the classes of one schema build, each with a qualname no other build uses."""

    def __init__(self) -> None:
        self.build = f"build{next(_builds)}"

    def _class(self, name: str, annotations: dict[str, Any], namespace: dict[str, Any], bases: tuple = ()) -> type:
        cls = type(name, bases, {**namespace, "__module__": MODULE, "__qualname__": f"{self.build}.{name}"})
        cls.__annotations__ = annotations
        return cls

    def object_type(self, name: str, fields: dict[str, tuple[Any, Any]], description: str | None = None,
                    bases: tuple = ()) -> type:
        """`fields`: python name -> (annotation, strawberry.field(...) or a default); `bases`: types
        whose fields come first (the core root types)."""
        annotations = {key: annotation for key, (annotation, _) in fields.items()}
        namespace = {key: value for key, (_, value) in fields.items()}
        return strawberry.type(self._class(name, annotations, namespace, bases), name=name, description=description)

    def input_type(self, name: str, fields: dict[str, tuple[Any, Any]], description: str | None = None) -> type:
        annotations = {key: annotation for key, (annotation, _) in fields.items()}
        namespace = {key: value for key, (_, value) in fields.items()}
        return strawberry.input(self._class(name, annotations, namespace), name=name, description=description)

    def raw_class(self, name: str, bases: tuple = ()) -> type:
        """A class to decorate later: for types that refer to each other (or to themselves)."""
        return self._class(name, {}, {}, bases)

    def finish_object(self, cls: type, fields: dict[str, tuple[Any, Any]], description: str | None = None) -> type:
        cls.__annotations__ = {key: annotation for key, (annotation, _) in fields.items()}
        for key, (_, value) in fields.items():
            setattr(cls, key, value)
        return strawberry.type(cls, name=cls.__name__, description=description)

    def finish_input(self, cls: type, fields: dict[str, tuple[Any, Any]], description: str | None = None) -> type:
        cls.__annotations__ = {key: annotation for key, (annotation, _) in fields.items()}
        for key, (_, value) in fields.items():
            setattr(cls, key, value)
        return strawberry.input(cls, name=cls.__name__, description=description)


def resolver(
    function: Callable[..., Any],
    arguments: dict[str, tuple[Any, Any]],
    returns: Any,
    *,
    name: str,
) -> Callable[..., Any]:
    """Wrap `async function(root, info, **arguments)` with the signature Strawberry reads:
    `arguments` maps python names to (annotation, default or inspect.Parameter.empty); an
    argument the client left out arrives as None."""

    async def resolve(root, info, **kwargs):
        # Optional arguments default to UNSET (so the SDL shows no `= null`); resolvers see None.
        return await function(root, info, **{k: None if v is strawberry.UNSET else v for k, v in kwargs.items()})

    parameters = [
        inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info),
    ]
    parameters += [
        inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        for key, (annotation, default) in arguments.items()
    ]
    resolve.__signature__ = inspect.Signature(parameters, return_annotation=returns)
    resolve.__annotations__ = {p.name: p.annotation for p in parameters[1:]} | {"return": returns}
    resolve.__name__ = resolve.__qualname__ = name
    return resolve


def argument(annotation: Any, graphql_name: str) -> Any:
    """An annotation that also fixes the argument's GraphQL name."""
    return Annotated[annotation, strawberry.argument(name=graphql_name)]
