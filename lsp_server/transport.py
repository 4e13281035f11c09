"""stdio and TCP transports that read with `FrameParser` instead of pygls's reader (see
framing.py for why); writing, dispatch and shutdown stay pygls's."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from pygls.io_ import StdoutWriter

from .framing import FrameParser, Message
from .protocol import PARSE_ERROR, StacklensProtocol

log = logging.getLogger(__name__)
READ_BYTES = 1 << 20
# How long the input may pause mid-body before the parser checks whether the body it has is
# already complete (a declared length that was too long, with the client waiting for an answer).
STALL_S = 0.5


async def pump(
    read: Callable[[], Awaitable[bytes]], protocol: StacklensProtocol, stop: threading.Event
) -> None:
    """Read, frame and dispatch until end of input or ``stop``."""
    parser = FrameParser()
    pending: asyncio.Future[bytes] | None = None
    while not stop.is_set():
        if pending is None:
            pending = asyncio.ensure_future(read())
        done, _ = await asyncio.wait({pending}, timeout=STALL_S if parser.waiting else None)
        if not done:
            events = parser.stalled()  # the read stays pending; wait on it again
        else:
            data, pending = pending.result(), None
            if not data:
                log.info("end of input: the client closed the connection")
                return
            events = parser.feed(data)
        for event in events:
            if isinstance(event, Message):
                await protocol.settle(event.data)
                protocol.receive(event.data)
            else:
                protocol.reply_error(None, PARSE_ERROR, event.reason)
            await asyncio.sleep(0)  # let the handler start before the next message, as pygls does


def serve_stdio(server: Any, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """`server.start_io`, with our reader."""
    server._stop_event = stop = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout))
    fd = stdin.fileno()
    # One thread blocked in read(2): pygls's pool serves handlers and must not be held by it.
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stacklens-stdin")

    async def read() -> bytes:
        return await asyncio.get_running_loop().run_in_executor(reader, os.read, fd, READ_BYTES)

    try:
        asyncio.run(pump(read, server.protocol, stop))
    except BrokenPipeError:
        log.error("the connection to the client is lost; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        reader.shutdown(wait=False, cancel_futures=True)
        server.shutdown()


def serve_tcp(server: Any, host: str, port: int) -> None:
    """`server.start_tcp`, with our reader: one client at a time, as pygls's."""
    server._stop_event = stop = threading.Event()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.protocol.set_writer(writer)

        async def read() -> bytes:
            return await reader.read(READ_BYTES)

        await pump(read, server.protocol, stop)
        server.shutdown()

    async def main() -> None:
        server._server = listener = await asyncio.start_server(connection, host, port)
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        log.debug("TCP server cancelled")
