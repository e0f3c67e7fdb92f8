"""How the server commands log: plain text for people, or one JSON object per line for machines.

`AGENTROSTER_LOG_FORMAT=json` writes each record as JSON (python-json-logger): `time` (ISO 8601,
UTC), `level`, `logger`, `message`, `exc_info` when there is one, and any `extra=` fields; with
tracing on (`agentroster.telemetry`), a record written inside a span also has `trace_id` and
`span_id` (hex, as trace backends show them).
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from agentroster import tracing

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_formatter() -> logging.Formatter:
    """One JSON object per record, with stable field names."""
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


class TraceIds(logging.Filter):
    """Adds the current span's `trace_id` and `span_id` to a record (nothing outside a span, or
    with tracing off)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops one."""
        ids = tracing.current_ids()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return True


def configure_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Send the root logger's records at `level` and above to `stream` (stderr) as `log_format`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    if log_format == "json" and tracing.available():
        handler.addFilter(TraceIds())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
