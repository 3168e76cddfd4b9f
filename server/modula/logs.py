"""The server's log: each record one line, as text (the default) or as one JSON object, carrying the
id of the request it was written for.

A request's id comes from its `X-Request-ID` header when that is a plain token, else it is made
here; `RequestIds` (ASGI middleware) keeps it in a context variable while the request runs, echoes
it in the response's `X-Request-ID` and, when asked, logs one line per request with its operation,
status and duration. Plugin lines (`log.info`, `print`) are written on a Lua thread, where the
context variable is not set: the plugin's call carries the id over as the record's `request_id`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import time
import random
from dataclasses import dataclass
from typing import Any

FORMATS = ("text", "json")
REQUEST_HEADER = b"x-request-id"
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # anything else is replaced, never logged
# The extra fields of a record that the JSON form carries (when set), in this order.
FIELDS = ("request_id", "operation", "method", "path", "status", "duration_ms", "plugin", "plugin_level", "version",
          "generation")

requests_log = logging.getLogger("modula.request")


@dataclass
class RequestInfo:
    """What the log knows of the request being served; the GraphQL endpoint adds the operation."""

    id: str
    operation: str | None = None


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar("modula_request", default=None)


def current_request() -> RequestInfo | None:
    return _current.get()


def current_request_id() -> str | None:
    info = _current.get()
    return info.id if info is not None else None


def request_id_from(header: str | None) -> str:
    """The client's id when it is a plain token of at most 128 characters, else a new one."""
    if header and _ACCEPTED_ID.match(header):
        return header
    return new_request_id()


def new_request_id() -> str:
    """32 hex digits, like a uuid4's: unique enough to name a request in logs and not a secret, so
    from the process's pseudo-random generator (uuid4 asks the kernel for bytes every time: 5 % of
    a small request's samples)."""
    return f"{random.getrandbits(128):032x}"


class RequestIds:
    """ASGI middleware: a request id per HTTP request (see the module's docstring); `log_requests`
    writes one `modula.request` line per request."""

    def __init__(self, app: Any, *, log_requests: bool = False) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or ()).get(REQUEST_HEADER)
        info = RequestInfo(request_id_from(sent.decode("latin-1") if sent else None))
        token = _current.set(info)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != REQUEST_HEADER]
                message = {**message, "headers": [*headers, (b"x-request-id", info.id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
            if self.log_requests:
                duration = round((time.perf_counter() - started) * 1000, 2)
                requests_log.info("%s %s %d %.1f ms%s", scope.get("method"), scope.get("path"), status, duration,
                                  f" {info.operation}" if info.operation else "",
                                  extra={"request_id": info.id, "operation": info.operation,
                                         "method": scope.get("method"), "path": scope.get("path"), "status": status,
                                         "duration_ms": duration})


class RequestContext(logging.Filter):
    """Gives every record a `request_id`: the one it was written with, else the current request's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class TextFormatter(logging.Formatter):
    """`2026-12-03 11:20:01,123 INFO modula.plugin.forum: message [request 3f2a…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [request {request_id}]" if request_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, then the request's
    and the plugin's fields when the record has them, and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
                      .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """The `logging.config.dictConfig` of `modula serve` (uvicorn's own loggers included): every
    line to stderr in `log_format`."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    formatter = {"json": "modula.logs.JsonFormatter", "text": "modula.logs.TextFormatter"}[log_format]
    handler = {"handlers": ["stderr"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": "modula.logs.RequestContext"}},
        "formatters": {"modula": {"()": formatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "modula",
                                "filters": ["request"]}},
        "loggers": {"modula": handler, "uvicorn": handler, "uvicorn.error": {"level": level},
                    "uvicorn.access": {**handler, "level": "WARNING"}},
    }
