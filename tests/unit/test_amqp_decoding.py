"""The lenient frame decoder: pamqp's own answer for valid frames, a value for bad ones."""

from __future__ import annotations

import datetime
import inspect
import struct

import aiormq.connection
import pamqp.frame
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands, header
from pamqp.exceptions import UnmarshalingException

from agentroster.worker import amqp_decoding
from agentroster.worker.amqp_decoding import (
    UNDECODABLE_HEADER,
    is_undecodable,
    lenient_unmarshal,
    printable,
)
from agentroster.worker.dead_letters import MAX_HEADER_DEPTH, publishable_headers
from tests.hostile.raw_amqp import nested_headers

STRICT = amqp_decoding._strict_unmarshal


def deliver_frame(routing_key: bytes) -> bytes:
    """A basic.deliver method frame with a raw routing key (as RabbitMQ relays it)."""
    payload = struct.pack(">HH", 60, 60)
    payload += b"\x03ctg" + struct.pack(">Q", 7) + b"\x00" + b"\x02ex"
    payload += bytes([len(routing_key)]) + routing_key
    return struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce"


def header_frame(properties: commands.Basic.Properties, splice: dict[bytes, bytes]) -> bytes:
    """A content header frame, with bytes spliced in (same length)."""
    frame = pamqp.frame.marshal(header.ContentHeader(body_size=42, properties=properties), 1)
    for placeholder, hostile in splice.items():
        frame = frame.replace(placeholder, hostile)
    return frame


def fields(decoded: tuple[int, int, object]) -> tuple[object, ...]:
    """A decoded frame as comparable values."""
    consumed, channel, value = decoded
    if isinstance(value, header.ContentHeader):
        value = value.properties
    names: list[str] = getattr(value, "__slots__", [])
    return consumed, channel, {name: getattr(value, name) for name in names}


def marker(value: object) -> str:
    """The problem our decoder wrote into a content header."""
    assert isinstance(value, header.ContentHeader)
    said = (value.properties.headers or {})[UNDECODABLE_HEADER]
    assert isinstance(said, str)
    return said


def test_upstream_pamqp_still_refuses_a_routing_key_that_is_not_utf8() -> None:
    """The reproduction of the upstream bug: if this fails, pamqp fixed it; drop the patch."""
    with pytest.raises(UnmarshalingException, match="utf-8"):
        STRICT(deliver_frame(b"agent.\xff.register"))


def test_aiormq_still_looks_the_decoder_up_at_each_frame() -> None:
    """The patch works only while aiormq calls `pamqp.frame.unmarshal` through the module."""
    source = inspect.getsource(aiormq.connection.FrameReceiver.get_frame)
    assert "pamqp.frame.unmarshal(" in source


def test_install_is_idempotent_and_valid_frames_decode_as_before() -> None:
    amqp_decoding.install()
    amqp_decoding.install()
    assert amqp_decoding.installed()
    assert pamqp.frame.unmarshal is lenient_unmarshal
    properties = commands.Basic.Properties(
        content_type="application/json",
        headers={"x-a": "ü", "x-t": datetime.datetime(2001, 2, 3, tzinfo=datetime.UTC)},
        message_type="register",
    )
    for frame in (deliver_frame(b"agent.a.register"), header_frame(properties, {})):
        assert fields(lenient_unmarshal(frame)) == fields(STRICT(frame))
    _, _, value = lenient_unmarshal(header_frame(properties, {}))
    assert isinstance(value, header.ContentHeader)
    assert UNDECODABLE_HEADER not in (value.properties.headers or {})


def test_a_routing_key_that_is_not_utf8_decodes_with_escapes() -> None:
    _, channel, value = lenient_unmarshal(deliver_frame(b"agent.\xff.register"))
    assert channel == 1
    assert isinstance(value, commands.Basic.Deliver)
    assert value.delivery_tag == 7
    routing_key = value.routing_key
    assert routing_key is not None
    assert is_undecodable(routing_key)
    assert routing_key.encode("utf-8", "surrogateescape") == b"agent.\xff.register"
    assert printable(routing_key) == "agent.\\xff.register"


def test_a_header_key_and_a_property_not_utf8_are_marked() -> None:
    frame = header_frame(
        commands.Basic.Properties(headers={"x-KEY": 1}, message_id="MSGID"),
        {b"x-KEY": b"x-\xff\xfe!", b"MSGID": b"\xc3\x28abc"},
    )
    with pytest.raises(UnmarshalingException):
        STRICT(frame)
    _, _, value = lenient_unmarshal(frame)
    assert isinstance(value, header.ContentHeader)
    assert value.body_size == 42
    assert "x-\\xff\\xfe!" in marker(value)
    assert "\\xc3(abc" in marker(value)
    assert is_undecodable(value.properties.message_id or "")


def test_a_timestamp_past_year_9999_becomes_none_and_is_marked() -> None:
    mark = datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
    frame = header_frame(
        commands.Basic.Properties(timestamp=mark),
        {struct.pack(">Q", int(mark.timestamp())): struct.pack(">Q", 2**62)},
    )
    _, _, value = lenient_unmarshal(frame)
    assert isinstance(value, header.ContentHeader)
    assert value.properties.timestamp is None
    assert "timestamp out of range" in marker(value)


def test_a_header_table_too_deep_keeps_the_body_size_and_says_why() -> None:
    payload = struct.pack(">HHQ", 60, 0, 42) + nested_headers(5000)
    frame = struct.pack(">BHI", 2, 1, len(payload)) + payload + b"\xce"
    consumed, channel, value = lenient_unmarshal(frame)
    assert (consumed, channel) == (len(frame), 1)
    assert isinstance(value, header.ContentHeader)
    assert value.body_size == 42
    assert "RecursionError" in marker(value)


def test_a_broken_stream_is_still_an_error() -> None:
    """Only whole frames are recovered; a truncated one is aiormq's to report."""
    frame = deliver_frame(b"agent.\xff.register")
    with pytest.raises(UnmarshalingException):
        lenient_unmarshal(frame[:-1] + b"\x00")


def test_the_pamqp_decoders_are_restored_after_a_lenient_decode() -> None:
    before = dict(pamqp.decode.METHODS), dict(pamqp.decode.TABLE_MAPPING)
    lenient_unmarshal(deliver_frame(b"agent.\xff.register"))
    assert (dict(pamqp.decode.METHODS), dict(pamqp.decode.TABLE_MAPPING)) == before


def test_dead_letter_headers_can_be_encoded_again() -> None:
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(MAX_HEADER_DEPTH + 5):
        deep = {"a": deep}
    headers = publishable_headers(
        {"x-\udcff": "v\udcfe", "bin": b"\xff", "list": [b"\x00", "ok", None], "deep": deep}
    )
    assert headers["x-\\xff"] == "v\\xfe"
    assert headers["bin"] == bytearray(b"\xff")
    encoded = pamqp.encode.field_table(headers)  # would raise on bytes, surrogates, recursion
    assert pamqp.decode.field_table(encoded)[1]["list"] == [bytearray(b"\x00"), "ok", None]


@settings(max_examples=300, deadline=None)
@given(
    flags=st.integers(0, 0xFFFE),
    properties=st.binary(max_size=300),
    body_size=st.integers(0, 2**40),
)
def test_any_whole_content_header_decodes_with_its_body_size(
    flags: int, properties: bytes, body_size: int
) -> None:
    """Whatever a content header holds, the channel gets a header and the body size to read."""
    payload = struct.pack(">HHQH", 60, 0, body_size, flags & 0xFFFE) + properties
    frame = struct.pack(">BHI", 2, 1, len(payload)) + payload + b"\xce"
    consumed, channel, value = lenient_unmarshal(frame)
    assert (consumed, channel) == (len(frame), 1)
    assert isinstance(value, header.ContentHeader)
    assert value.body_size == body_size


@settings(max_examples=300, deadline=None)
@given(routing_key=st.binary(max_size=255))
def test_any_routing_key_decodes_and_keeps_its_bytes(routing_key: bytes) -> None:
    _, _, value = lenient_unmarshal(deliver_frame(routing_key))
    assert isinstance(value, commands.Basic.Deliver)
    assert value.routing_key is not None
    assert value.routing_key.encode("utf-8", "surrogateescape") == routing_key
