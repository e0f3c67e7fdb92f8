"""AGENTROSTER_LOG_FORMAT: text for people, one JSON object per line for machines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from agentroster.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    logging.getLogger("agentroster.worker").info("applied %d", 3, extra={"agent_id": "weather"})
    logging.getLogger("agentroster.worker").debug("below the level")
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "INFO"
    assert record["logger"] == "agentroster.worker"
    assert record["message"] == "applied 3"
    assert record["agent_id"] == "weather"
    assert "time" in record


def test_json_carries_the_exception() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    record = json.loads(out.getvalue())
    assert "ValueError: boom" in record["exc_info"]


def test_text_is_one_readable_line() -> None:
    out = io.StringIO()
    configure_logging("WARNING", "text", out)
    logging.getLogger("agentroster.api").warning("slow")
    assert out.getvalue().rstrip().endswith("WARNING agentroster.api: slow")
