"""What every resolver of one request can reach: the held database session, loaders, settings,
the viewer, and the cookies to set on the response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modula.auth.sessions import Cookie
from modula.auth.viewer import Viewer
from modula.config import Settings
from modula.db.connection import Session
from modula.media.storage import MediaStorage
from modula.outbox.changes import recorded_change
from modula.schema.loaders import Loaders

if TYPE_CHECKING:
    from modula.upload_unit import UploadUnit


@dataclass
class RequestContext:
    session: Session
    settings: Settings
    request: Any = None
    schemas: Any = None  # the SchemaService, for plugin management
    viewer: Viewer = field(default_factory=Viewer.anonymous)  # resolved per request; the default may do nothing
    response_cookies: list[Cookie] = field(default_factory=list)  # set on the HTTP response (login, logout)
    request_id: str | None = None  # in the X-Request-ID header, masked errors and their log lines
    media_storage: MediaStorage | None = None  # where uploads go (None: uploads are refused)
    uploads: UploadUnit | None = None  # a multipart request's uploads, all or nothing (upload_unit.py)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.session)

    def viewers_changed(self) -> None:
        """This request just committed a change to who a viewer is or what they may do: the
        process forgets its cached viewers at once (other processes within their poll)."""
        viewers = getattr(self.schemas, "viewers", None)
        if viewers is not None:
            viewers.clear()

    def core_change(self, table: str):
        """Wrap a core service call that changes `table`: `async with context.core_change("content")
        as record: row = ...; await record("insert", row)` queues the change, in its transaction,
        for the plugins that watch it after commit (`plugin.on("after_commit", "content", fn)`)."""
        return recorded_change(self.session, self.schemas.host if self.schemas is not None else None, table)

    async def core_event(self, event: str, table: str, row: dict[str, Any], operation: str) -> None:
        """Plugins watching a core table hear of a change this request committed
        (`plugin.on("after_insert", "content", fn)`)."""
        if self.schemas is not None:
            await self.schemas.host.core_event(event, table, dict(row), {"operation": operation})
