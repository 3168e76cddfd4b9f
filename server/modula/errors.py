"""Errors a client can act on: a code, a message, and the path of the input that caused them.

Services raise these; the GraphQL layer turns them into `extensions.code` and
`extensions.inputPath`. Anything else that escapes a resolver is an internal error and is masked.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

InputPath = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """('input', 'fields', 3, 'value') -> 'input.fields[3].value'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """" — did you mean ForumThread?" when one of `known` is close to `name` (difflib), else ""."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" — did you mean {close[0]}?" if close else ""


class ModulaError(Exception):
    """One problem with a request, safe to show to the client."""

    def __init__(self, code: str, message: str, path: Sequence[str | int] = ()) -> None:
        self.code = code
        self.path: InputPath = tuple(path)
        self.reason = message  # without the path, for callers that name the input their own way
        self.message = f"{format_path(self.path)}: {message}" if self.path else message
        super().__init__(self.message)

    @property
    def extensions(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code}
        if self.path:
            extensions["inputPath"] = list(self.path)
        return extensions


class InvalidInput(ModulaError):
    """Several problems found in one input; the first one leads, all are listed."""

    def __init__(self, problems: Sequence[ModulaError]) -> None:
        first = problems[0]
        self.problems = list(problems)
        super().__init__(first.code, first.message, ())
        self.path = first.path
        if len(problems) > 1:
            self.message = f"{first.message} (and {len(problems) - 1} more problem(s))"
            self.args = (self.message,)

    @property
    def extensions(self) -> dict[str, Any]:
        extensions = super().extensions
        if len(self.problems) > 1:
            extensions["problems"] = [
                {"code": p.code, "message": p.message, "inputPath": list(p.path)} for p in self.problems
            ]
        return extensions


class Problems:
    """Collects input problems so a client hears about all of them at once."""

    def __init__(self) -> None:
        self.items: list[ModulaError] = []

    def add(self, code: str, message: str, path: Sequence[str | int]) -> None:
        self.items.append(ModulaError(code, message, path))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput(self.items)


def not_found(what: str, ident: Any, path: Sequence[str | int] = ()) -> ModulaError:
    return ModulaError("NOT_FOUND", f"{what} {ident} does not exist", path)


class CommandError(ModulaError):
    """A failure of a `modula` command, told the way the command line shows it: what is wrong, and
    what the user can do about it (`modula: error: <message>` then `  fix: <fix>`)."""

    def __init__(self, message: str, fix: str, *, code: str = "COMMAND_FAILED") -> None:
        super().__init__(code, message)
        self.fix = fix
