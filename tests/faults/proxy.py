"""A TCP proxy of our own, in front of RabbitMQ or PostgreSQL, that can cut, stall or delay on command.

It runs on the test's event loop. The service under test connects to `proxy.port` instead of the
real server, so a fault hits only the service's connections, never the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass(eq=False)  # identity: each pipe is one connection
class _Pipe:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        self._refusing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._delay = 0.0
        self.connections_accepted = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every connection now, and refuse new ones until `restore()`: an outage."""
        self._refusing = True
        for pipe in list(self._pipes):
            self._drop(pipe)

    def stall(self) -> None:
        """Keep connections open but pass no bytes: a hung network or server."""
        self._flowing.clear()

    def delay(self, seconds: float) -> None:
        """Hold every chunk of bytes this long before passing it on."""
        self._delay = seconds

    def restore(self) -> None:
        self._refusing = False
        self._delay = 0.0
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.close()
            return
        self.connections_accepted += 1
        pipe = _Pipe(reader, writer)
        try:
            up_reader, pipe.upstream = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._pipes.add(pipe)
        pipe.tasks = [
            asyncio.create_task(self._pump(pipe, reader, pipe.upstream)),
            asyncio.create_task(self._pump(pipe, up_reader, writer)),
        ]

    async def _pump(self, pipe: _Pipe, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                await self._flowing.wait()
                if self._delay:
                    await asyncio.sleep(self._delay)
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._drop(pipe)

    def _drop(self, pipe: _Pipe) -> None:
        if pipe not in self._pipes:
            return
        self._pipes.discard(pipe)
        for writer in (pipe.writer, pipe.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.transport.abort()  # a reset, as a dead network gives, not a polite close
        current = asyncio.current_task()
        for task in pipe.tasks:
            if task is not current:
                task.cancel()
