"""The fault proxy itself: it forwards, cuts, hangs (holding bytes, then delivering them) and
delays, against a local echo server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.faults.proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    """A proxy in front of an echo server."""
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tcp_proxy = await TcpProxy.to(f"tcp://127.0.0.1:{port}")
    yield tcp_proxy
    await tcp_proxy.close()
    server.close()
    await server.wait_closed()


async def _connect(proxy: TcpProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def test_forwards_both_ways(proxy: TcpProxy) -> None:
    reader, writer = await _connect(proxy)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    writer.close()


async def test_cut_resets_connections_and_refuses_new_ones_until_restored(
    proxy: TcpProxy,
) -> None:
    reader, writer = await _connect(proxy)
    writer.write(b"a")
    await asyncio.wait_for(reader.readexactly(1), 5)
    proxy.cut()
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    reader, writer = await _connect(proxy)
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    proxy.restore()
    reader, writer = await _connect(proxy)
    writer.write(b"b")
    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"b"
    writer.close()


async def test_hang_holds_the_bytes_and_restore_delivers_them(proxy: TcpProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.hang()
    writer.write(b"held")
    await proxy.held(b"held", timeout=5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.3)
    proxy.restore()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
    writer.close()


async def test_delay_slows_each_chunk(proxy: TcpProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.delay(200)
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer.write(b"x")
    await asyncio.wait_for(reader.readexactly(1), 5)
    assert loop.time() - started >= 0.4  # 200 ms each way
    writer.close()


async def test_a_connection_made_during_a_hang_is_held_then_forwarded(proxy: TcpProxy) -> None:
    proxy.hang()
    reader, writer = await _connect(proxy)
    writer.write(b"late")
    await proxy.held(b"late", timeout=5)
    proxy.restore()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"late"
    writer.close()
