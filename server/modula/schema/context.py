"""What every resolver of one request can reach: the held database session, loaders, settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modula.config import Settings
from modula.db.connection import Session
from modula.schema.loaders import Loaders


@dataclass
class RequestContext:
    session: Session
    settings: Settings
    request: Any = None
    schemas: Any = None  # the SchemaService, for plugin management
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.session)
