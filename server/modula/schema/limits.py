"""Request limits and production hardening, applied before any resolver runs: how long, how deep and
how aliased a GraphQL document may be, and what production mode keeps from non-admins."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationContext,
    ValidationRule,
    parse,
)
from strawberry.extensions import SchemaExtension

from modula.config import Settings
from modula.db import storable

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})

# What graphql-core's did_you_mean() appends to a message: names are quoted and cannot hold a "?".
_SUGGESTION = re.compile(r" Did you mean [^?]*\?")


@dataclass(frozen=True)
class Limits:
    """What a schema holds every request to (from the server's Settings)."""

    max_depth: int
    max_aliases: int
    max_tokens: int
    production: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.max_query_depth, settings.max_aliases, settings.max_tokens, settings.production)


def coded_error(code: str, message: str, nodes: Any = None) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": code})


class RequestLimits(SchemaExtension):
    """Parses within the token limit (through an LRU cache, as Strawberry's ParserCache does), adds
    the depth and alias rules to validation, and in production mode refuses introspection to
    non-admins and leaves the "Did you mean …" suggestions out of their error messages.

    Suggestions are removed from the messages because graphql-core's `hide_suggestions` would have
    to reach both validation and execution (variable values get suggestions too), and Strawberry
    0.341 passes it to neither."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        restricted = self.limits.production and not _is_admin(execution.context)
        extra = document_rules(self.limits.max_depth, self.limits.max_aliases)
        if restricted:
            extra += (IntrospectionForAdminsRule,)
        # A tuple of the same classes per limits: Strawberry's ValidationCache keys results on it.
        execution.validation_rules = (*execution.validation_rules, *extra)
        yield
        result = execution.result
        if restricted and getattr(result, "errors", None):
            result.errors = [_without_suggestions(error) for error in result.errors]

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        execution.graphql_document = parse_within(execution.query, self.limits.max_tokens)
        yield


@functools.lru_cache(maxsize=256)
def parse_within(query: str, max_tokens: int) -> DocumentNode:
    """The document, or TOO_MANY_TOKENS once the parser has read more than `max_tokens` tokens (or
    comments, which the parser keeps in memory too)."""
    try:
        return parse(query, max_lexical_tokens=max_tokens, max_comments=max_tokens)
    except GraphQLSyntaxError as error:
        # The parser reports its limits as syntax errors: "Document contains more than N tokens."
        if f"Document contains more than {max_tokens} " in error.message:
            raise coded_error("TOO_MANY_TOKENS", f"the query exceeds the maximum of {max_tokens} tokens") from None
        raise


@functools.cache
def document_rules(max_depth: int, max_aliases: int) -> tuple[type[ValidationRule], ...]:
    """The validation rules for these maxima, made once so that validation results stay cached."""

    class QueryDepthRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            depth = _Measure(self.context).depth(node.selection_set)
            if depth > max_depth:
                self.report_error(coded_error(
                    "QUERY_TOO_DEEP", f"query depth {depth} exceeds the maximum of {max_depth}", node))

    class AliasCountRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            aliases = _Measure(self.context).aliases(node.selection_set)
            if aliases > max_aliases:
                self.report_error(coded_error(
                    "TOO_MANY_ALIASES", f"{aliases} aliases exceed the maximum of {max_aliases}", node))

    return QueryDepthRule, AliasCountRule, StorableLiteralsRule


class StorableLiteralsRule(ValidationRule):
    """Literals the databases cannot store alike are refused before anything runs: a number that
    is not finite once read (`1e400` is Infinity) and text with a NUL or a lone surrogate (see
    db/storable.py; variables are checked by graphql_http.py)."""

    def enter_float_value(self, node: FloatValueNode, *_args: Any) -> None:
        self._number(node)

    def enter_int_value(self, node: IntValueNode, *_args: Any) -> None:
        self._number(node)  # 400 digits in a Float position are Infinity too

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        found = storable.problem(node.value)
        if found is not None:
            self.report_error(coded_error("INVALID_VALUE", f"the string literal {found}", node))

    def _number(self, node: FloatValueNode | IntValueNode) -> None:
        try:
            value = float(node.value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            self.report_error(coded_error("INVALID_VALUE", f"the number {_shortened(node.value)} is not finite once read"
                                                           " (it overflows a double): send a finite number", node))


def _shortened(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"


class IntrospectionForAdminsRule(ValidationRule):
    """Production mode: `__schema` and `__type` are for administrators (`__typename` stays open)."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        if node.name.value in INTROSPECTION_FIELDS:
            self.report_error(coded_error(
                "INTROSPECTION_DISABLED",
                f"introspection ({node.name.value}) is open to administrators only on this server", node))


class _Measure:
    """Depth and alias count of a selection set with its fragments spread in, as it would execute.

    Depth counts field levels (`{ a { b } }` is 2); an introspection field (`__schema`, `__type`)
    counts as one level whatever it selects, so the playground's introspection query (15 levels)
    fits small maxima; how far introspection may recurse through types is bounded by graphql-core's
    MaxIntrospectionDepthRule, one of its specified rules. A fragment is measured once and counts
    at every spread (aliases at every spread too); a fragment cycle counts as nothing here
    (NoFragmentCyclesRule reports it)."""

    def __init__(self, context: ValidationContext) -> None:
        self.context = context
        self._fragments: dict[tuple[str, str], int] = {}

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        return self._walk("depth", selection_set)

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        return self._walk("aliases", selection_set)

    def _walk(self, measure: str, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        values = [self._selection(measure, selection) for selection in selection_set.selections]
        if measure == "depth":
            return max(values, default=0)
        return sum(values)

    def _selection(self, measure: str, node: Any) -> int:
        if isinstance(node, FieldNode):
            if measure == "aliases":
                return (1 if node.alias else 0) + self._walk(measure, node.selection_set)
            if node.name.value in INTROSPECTION_FIELDS:
                return 1
            return 1 + self._walk(measure, node.selection_set)
        if isinstance(node, InlineFragmentNode):
            return self._walk(measure, node.selection_set)
        if isinstance(node, FragmentSpreadNode):
            key = (measure, node.name.value)
            if key not in self._fragments:
                self._fragments[key] = 0  # while it is measured: a cycle back to it adds nothing
                fragment: FragmentDefinitionNode | None = self.context.get_fragment(node.name.value)
                self._fragments[key] = self._walk(measure, fragment.selection_set) if fragment else 0
            return self._fragments[key]
        return 0


def _is_admin(context: Any) -> bool:
    return bool(getattr(getattr(context, "viewer", None), "is_admin", False))


def _without_suggestions(error: GraphQLError) -> GraphQLError:
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(message, error.nodes, error.source, error.positions, error.path,
                        error.original_error, error.extensions)
