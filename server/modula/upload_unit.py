"""A GraphQL multipart request's uploads are all or nothing: the request's operations run in one
transaction, and when any of them fails nothing of it is kept, no media row and (for a backend that
writes outside the transaction) no bytes, while every answer says which field failed and which were
undone or never ran because of it.

So that the transaction holds only what it can undo, a mutation in a multipart request that carries
files may select only the upload fields (`uploadMedia`, `uploadMediaItems`, and `__typename`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import (DocumentNode, FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLError,
                     InlineFragmentNode, OperationDefinitionNode, OperationType, SelectionSetNode)

from modula.cms import media
from modula.db.connection import Session
from modula.media.storage import MediaStorage
from modula.schema.limits import parse_within

UPLOAD_FIELDS = frozenset({"uploadMedia", "uploadMediaItems"})
UNDONE = "UPLOAD_ROLLED_BACK"

Answer = tuple[dict[str, Any], int]  # a GraphQL response body and its status


class Undo(Exception):
    """Raised inside the request's transaction to roll it back."""


@dataclass
class UploadUnit:
    """What one multipart request's operations uploaded, so that a failure can undo all of it."""

    written: set[str] = field(default_factory=set)  # digests stored during the request, by any backend
    operation: int = 0  # the operation running (its index in a batch)
    roots: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # per mutation: (response name, field)
    recorded: set[tuple[int, str]] = field(default_factory=set)  # (operation, response name) of uploads that ran

    def admit(self, query: str | None, operation_name: str | None, max_tokens: int) -> dict[str, Any] | None:
        """A request error when the operation is a mutation selecting more than the upload fields;
        None otherwise (a document that does not parse is left to the schema to report)."""
        roots = _mutation_roots(query, operation_name, max_tokens)
        if roots is None:
            return None
        others = [name for _, name in roots if name not in UPLOAD_FIELDS and name != "__typename"]
        if others:
            return {"message": f"a multipart request's uploads are all or nothing, so its mutation may select only "
                               f"uploadMedia and uploadMediaItems, not {others[0]!r}: send {others[0]!r} in a "
                               "request of its own", "extensions": {"code": "UPLOADS_NOT_ALONE"}}
        self.roots[self.operation] = roots
        return None

    def record(self, response_name: str) -> None:
        """The upload field `response_name` of the running operation stored its files."""
        self.recorded.add((self.operation, response_name))

    async def forget(self, session: Session, storage: MediaStorage | None) -> None:
        """After the rollback: discard what a backend writing outside the transaction stored for the
        request and no row names (bytes another media item holds stay)."""
        if storage is not None and not storage.transactional and self.written:
            await media.discard_unreferenced(session, storage, self.written)

    @staticmethod
    def failed(answers: list[Answer]) -> bool:
        return any(body.get("errors") for body, _ in answers)

    def undone(self, answers: list[Answer]) -> list[Answer]:
        """The answers once the request's transaction is rolled back: each mutation's data is null, and
        each upload field that did not fail itself has an error saying it was undone or never ran, and why."""
        cause = _cause(answers, batched=len(answers) > 1)
        rewritten = []
        for number, (body, status) in enumerate(answers):
            if number not in self.roots or "data" not in body:
                rewritten.append((body, status))
                continue
            errors = list(body.get("errors") or [])
            failed = {error["path"][0] for error in errors if error.get("path")}
            for response_name, name in self.roots[number]:
                if name not in UPLOAD_FIELDS or response_name in failed:
                    continue
                what = ("was uploaded, then undone" if (number, response_name) in self.recorded else "was not run")
                errors.append({"message": f"{response_name!r} ({name}) {what}: the uploads of one multipart request "
                                          f"are all or nothing, and {cause}",
                               "path": [response_name], "extensions": {"code": UNDONE}})
            rewritten.append(({**body, "data": None, "errors": errors}, status))
        return rewritten


def _cause(answers: list[Answer], *, batched: bool) -> str:
    for number, (body, _) in enumerate(answers, 1):
        for error in body.get("errors") or []:
            where = f"operation {number} of the batch" if batched else "the operation"
            if error.get("path"):
                where = (f"{error['path'][0]!r} of operation {number}" if batched else repr(error["path"][0]))
            code = (error.get("extensions") or {}).get("code")
            return f"{where} failed" + (f" ({code})" if code else "")
    return "the request failed"


def _mutation_roots(query: str | None, operation_name: str | None, max_tokens: int) -> list[tuple[str, str]] | None:
    """(response name, field name) of each root field of the mutation the request runs, in order;
    None when it runs a query, or when the document does not parse or lacks the operation."""
    if not query:
        return None
    try:
        document = parse_within(query, max_tokens)
    except GraphQLError:
        return None
    operation = _operation(document, operation_name)
    if operation is None or operation.operation != OperationType.MUTATION:
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    found: dict[str, str] = {}
    _collect(operation.selection_set, fragments, found, set())
    return list(found.items())


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


def _collect(selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], found: dict[str, str],
             seen: set[str]) -> None:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            found.setdefault((selection.alias or selection.name).value, selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            _collect(selection.selection_set, fragments, found, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                _collect(fragment.selection_set, fragments, found, seen | {selection.name.value})
