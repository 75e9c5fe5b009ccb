"""Structured JSON log lines, each carrying the request id of the request that wrote it."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

# Set by the ASGI gateway for the duration of a request; asgiref copies context into the
# threads that run sync code, so ORM and view logs carry it too.
current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True


class RefusedHandshakeFilter(logging.Filter):
    """uvicorn's websockets implementation logs "ASGI callable returned without completing
    handshake." at ERROR after every handshake the app refused with an HTTP response (ASGI's
    websocket.http.response: a 401 for a missing key, a 404 for an unknown path). Every WebSocket
    route here answers the handshake (core.problems.refuse_websocket), so this is a client's
    refusal, logged at INFO like the access line uvicorn writes beside it."""

    MESSAGE = "ASGI callable returned without completing handshake."

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.getMessage() == self.MESSAGE:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "WebSocket handshake refused with an HTTP response", ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", current_request_id.get()),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
