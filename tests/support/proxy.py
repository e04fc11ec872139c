"""A loopback TCP proxy whose link can be cut, stalled and restored: the service under test
connects through it, so a test can make PostgreSQL, Redis or the Solana node unreachable for
that service alone without touching the real server.

* `cut()`: new connections are refused and the open ones reset (a peer that went away).
* `stall()`: nothing is forwarded in either direction and nothing is closed; new
  connections are accepted and stall too (a peer that vanished without closing: power
  loss, a partition). `resume()` forwards again what was held back.
* `drop_answers()`: requests are forwarded, and the first byte of an answer resets the
  client's connection instead of reaching it (the request took effect, its answer was lost).
* `restore()` undoes any of them.

`accepted` counts the connections it has accepted (stalled ones included); `open_now()`
how many are established to it at this moment as the kernel sees them, so one a client
closed while the link was stalled is no longer counted."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from localnet.node_harness import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._dropping = False
        self.accepted = 0

    @classmethod
    def to(cls, url: str, default_port: int) -> TcpProxy:
        """A proxy to the server `url` names (its port, else `default_port`), not yet started."""
        target = urlsplit(url)
        return cls(target.hostname or "127.0.0.1", target.port or default_port)

    def url(self, url: str) -> str:
        """`url` with its host:port replaced by the proxy's."""
        host, port = self.target
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)

    def open_now(self) -> int:
        """Connections to the proxy's port in the ESTABLISHED state (/proc/net/tcp: any
        process of this host's network namespace; the proxy's own ends have it as their local
        port, not the remote one, and are not counted)."""
        established = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError), open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if int(fields[2].rsplit(":", 1)[1], 16) == self.port and fields[3] == "01":
                        established += 1
        return established

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()
        self._flowing.set()

    def stall(self) -> None:
        """Stop forwarding in both directions, closing nothing."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def drop_answers(self, drop: bool = True) -> None:
        self._dropping = drop

    async def restore(self) -> None:
        self._dropping = False
        self._flowing.set()
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await self._flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, answers: bool) -> None:
            try:
                while data := await src.read(65536):
                    await self._flowing.wait()
                    if answers and self._dropping:
                        dst.transport.abort()
                        return
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                await self._flowing.wait()  # a stalled link closes nothing either
                with contextlib.suppress(Exception):
                    dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        self._writers -= {writer, up_writer}
