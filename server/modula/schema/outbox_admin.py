"""The outbox over GraphQL, for admins: what is queued, delivered or dead, and retrying one."""

from __future__ import annotations

import datetime as dt
import enum
import json

import strawberry

from modula.db import outbox
from modula.errors import ModulaError
from modula.schema.core_types import CoreInfo
from modula.schema.guards import require_admin


@strawberry.enum(description="Where an outbox delivery stands.")
class DeliveryStatus(enum.Enum):
    PENDING = outbox.PENDING
    DELIVERED = outbox.DELIVERED
    DEAD = outbox.DEAD


@strawberry.type(description="A side effect a plugin queued with a change (http.enqueue, an after_commit hook), "
                             "delivered by the outbox worker after the change committed.")
class Delivery:
    id: int
    plugin: str
    kind: str = strawberry.field(description="http (a queued request) or hook (after_commit hooks on a change).")
    target: str = strawberry.field(description="The method and URL of a request, or the table and change of a hook.")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: dict) -> Delivery:
        return cls(id=row["id"], plugin=row["plugin"], kind=row["kind"], target=_target(row),
                   status=DeliveryStatus(row["status"]), attempts=row["attempts"],
                   next_attempt_at=row["next_attempt_at"], last_error=row["last_error"],
                   created_at=row["created_at"], delivered_at=row["delivered_at"])


def _target(row: dict) -> str:
    # Headers and bodies stay out: they may carry the receiver's secrets.
    try:
        payload = json.loads(row["payload"])
    except ValueError:
        return "(malformed)"
    if not isinstance(payload, dict):
        return "(malformed)"
    if row["kind"] == "http":
        return f"{payload.get('method')} {payload.get('url')}"
    return f"{payload.get('table')} {payload.get('change')}"


@strawberry.type
class OutboxQuery:
    @strawberry.field(description="Outbox deliveries, newest first, of one status or all (admins only).")
    async def deliveries(self, info: CoreInfo, status: DeliveryStatus | None = None, limit: int = 100,
                         offset: int = 0) -> list[Delivery]:
        require_admin(info, "see outbox deliveries")
        if limit < 0 or limit > info.context.settings.max_page_size:
            raise ModulaError("INVALID_INPUT", f"limit must be between 0 and {info.context.settings.max_page_size}", ("limit",))
        if offset < 0:
            raise ModulaError("INVALID_INPUT", "offset must not be negative", ("offset",))
        rows = await outbox.entries(info.context.session, status=status.value if status else None,
                                    limit=limit, offset=offset)
        return [Delivery.from_row(row) for row in rows]


@strawberry.type
class OutboxMutation:
    @strawberry.mutation(description="Deliver a dead or pending delivery again now, with its attempts counted "
                                     "from zero (admins only).")
    async def retry_delivery(self, info: CoreInfo, id: int) -> Delivery:
        require_admin(info, "retry outbox deliveries")
        row = await outbox.retry(info.context.session, id)
        if row is None:
            raise ModulaError("NOT_FOUND", f"no delivery {id} waits to be delivered (it does not exist or was delivered)",
                              ("id",))
        worker = getattr(getattr(info.context.request, "app", None), "state", None)
        if worker is not None and getattr(worker, "outbox", None) is not None:
            worker.outbox.wake()
        return Delivery.from_row(row)
