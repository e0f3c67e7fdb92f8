"""Decode whatever bytes RabbitMQ delivers, so that one bad message cannot drop the connection.

Why this exists: pamqp (4.0.1), which aiormq uses to decode every frame, raises on a
delivery it cannot turn into Python values: a routing key, header key or string property that
is not UTF-8, a timestamp beyond year 9999, a header table nested deeper than Python's
recursion limit. RabbitMQ passes all of these through from any publisher. aiormq (7.2.4) treats
the error as a broken connection: it closes it, aio-pika reconnects, the same message is
delivered again, and the worker loops (about six drops in 25 s, no command applied, valid
commands of the same window parked at the delivery limit). Reported upstream with a minimal
reproduction: see bench/README.md, "Upstream: pamqp drops the connection on a non-UTF-8
routing key".

The workaround, installed once by the worker (`install()`), wraps `pamqp.frame.unmarshal`,
which aiormq looks up at each frame: every frame is first decoded exactly as before (valid
frames take pamqp's own path, unchanged). Only a method or content-header frame that pamqp
refuses is decoded a second time, leniently:

- short strings (routing key, exchange, properties) and table keys that are not UTF-8 are
  decoded with `surrogateescape`: nothing is lost (`encode("utf-8", "surrogateescape")` gives
  the original bytes back) and `is_undecodable` recognises them;
- a timestamp out of range becomes `None`;
- a content header that still cannot be decoded (a table nested too deep) keeps only its body
  size, which the channel needs to read the body frames that follow.

A content header decoded leniently carries the header `UNDECODABLE_HEADER` saying what was
wrong, so the worker dead-letters the message as `undecodable` without inspecting every value;
a method frame has no headers, so the worker checks the routing key itself. The frame has been
read whole before it is decoded, so the stream stays in step whatever its content. (A publisher
that sets this header itself gets its own message dead-lettered: it hurts only itself.)

The patch is process-wide (aiormq has no per-connection decoder), which is acceptable because
it changes nothing for frames pamqp decodes: any other consumer in the same process (e.g. a
`Beacon` in `agentroster up`) gets strings with surrogates instead of a dropped connection.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pamqp.frame
from pamqp import commands, common, constants, decode, header
from pamqp.frame import FrameTypes

#: Header our decoder adds to a message it could only decode leniently: what was wrong.
UNDECODABLE_HEADER = "x-agentroster-undecodable"

Unmarshal = Callable[[bytes], tuple[int, int, FrameTypes]]

_LOWEST_ESCAPE, _HIGHEST_ESCAPE = "\udc80", "\udcff"


def is_undecodable(text: str) -> bool:
    """True if `text` came from bytes that are not UTF-8 (it holds surrogate escapes)."""
    if text.isascii():
        return False
    return any(_LOWEST_ESCAPE <= char <= _HIGHEST_ESCAPE for char in text)


def printable(text: str) -> str:
    """`text` with undecodable bytes written as `\\xff` escapes: safe to log and to re-encode."""
    if not is_undecodable(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def lenient_unmarshal(data_in: bytes) -> tuple[int, int, FrameTypes]:
    """`pamqp.frame.unmarshal`, with a lenient second try for frames it refuses."""
    try:
        return _strict_unmarshal(data_in)
    except Exception as error:  # any refusal: pamqp raises RecursionError too
        recovered = _recover(data_in, error)
        if recovered is None:
            raise
        return recovered


def install() -> None:
    """Make aiormq decode through `lenient_unmarshal` (idempotent; see the module docstring)."""
    pamqp.frame.unmarshal = lenient_unmarshal


def installed() -> bool:
    """Whether `install()` is in effect."""
    return pamqp.frame.unmarshal is lenient_unmarshal


_strict_unmarshal: Unmarshal = pamqp.frame.unmarshal


def _recover(data_in: bytes, error: BaseException) -> tuple[int, int, FrameTypes] | None:
    """Decode a refused frame leniently; None when it is not a whole method or header frame."""
    frame_type, channel, size = pamqp.frame.frame_parts(data_in)
    if size is None:
        return None
    byte_count = constants.FRAME_HEADER_SIZE + size + 1
    if len(data_in) < byte_count or data_in[byte_count - 1] != constants.FRAME_END:
        return None  # not a whole frame: the stream itself is broken, let aiormq say so
    if frame_type not in (constants.FRAME_METHOD, constants.FRAME_HEADER):
        return None
    problems: list[str] = []
    try:
        with _lenient_decoding(problems):
            consumed, channel, value = _strict_unmarshal(data_in)
    except Exception:  # still refused: keep what the stream needs
        if frame_type != constants.FRAME_HEADER:
            return None
        payload = data_in[constants.FRAME_HEADER_SIZE : byte_count - 1]
        if len(payload) < 12:
            return None
        _, weight, body_size = struct.unpack(">HHQ", payload[:12])
        detail = f"content header: {type(error).__name__}: {str(error)[:200]}"
        properties = commands.Basic.Properties(headers={UNDECODABLE_HEADER: detail})
        return byte_count, channel, header.ContentHeader(weight, body_size, properties)
    if isinstance(value, header.ContentHeader):
        headers = dict(value.properties.headers or {})
        headers[UNDECODABLE_HEADER] = "; ".join(problems) or "content header"
        value.properties.headers = headers
    return consumed, channel, value


@contextlib.contextmanager
def _lenient_decoding(problems: list[str]) -> Iterator[None]:
    """Swap pamqp's string, table and timestamp decoders for lenient ones, for one call.

    Safe on the event loop: decoding one frame is synchronous, so no other code runs between
    the swap and its undoing.
    """

    def short_str(value: bytes) -> tuple[int, str]:
        length = common.Struct.byte.unpack(value[0:1])[0]
        text, bad = _decode(value[1 : length + 1])
        if bad:
            problems.append(f"short string not UTF-8: '{printable(text)}'")
        return length + 1, text

    def timestamp(value: bytes) -> tuple[int, Any]:
        try:
            return decode.timestamp(value)
        except (ValueError, OverflowError, OSError):
            problems.append(f"timestamp out of range: 0x{value[0:8].hex()}")
            return 8, None

    def field_table(value: bytes) -> tuple[int, common.FieldTable]:
        # pamqp's field_table, with keys decoded leniently
        length = common.Struct.integer.unpack(value[0:4])[0]
        offset, end = 4, 4 + length
        if end > len(value):
            raise ValueError("Field table length exceeds available data")
        data: dict[str, Any] = {}
        while offset < end:
            key_length = common.Struct.byte.unpack_from(value, offset)[0]
            offset += 1
            if offset + key_length > end:
                raise ValueError("Field table key length exceeds data")
            key, bad = _decode(value[offset : offset + key_length])
            if bad:
                problems.append(f"header key not UTF-8: '{printable(key)}'")
            offset += key_length
            consumed, result = decode.embedded_value(value[offset:])
            offset += consumed
            data[key] = result
        return end, data

    swaps: list[tuple[dict[Any, Any], Any, Any]] = [
        (decode.METHODS, "shortstr", short_str),
        (decode.METHODS, "timestamp", timestamp),
        (decode.METHODS, "table", field_table),
        (decode.TABLE_MAPPING, b"T", timestamp),
        (decode.TABLE_MAPPING, b"F", field_table),
    ]
    saved = [(table, key, table[key]) for table, key, _ in swaps]
    try:
        for table, key, lenient in swaps:
            table[key] = lenient
        yield
    finally:
        for table, key, original in saved:
            table[key] = original


def _decode(raw: bytes) -> tuple[str, bool]:
    """UTF-8 text, and whether bytes that are not UTF-8 had to be escaped."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape"), True
