"""A TLS-terminating proxy for the embedded server, which is built without OpenSSL and listens on a
Unix socket only: it listens on 127.0.0.1, answers PostgreSQL's SSLRequest with 'S', completes the
TLS handshake with a certificate of a throwaway CA (trustme), counts it, and relays the decrypted
protocol to the server's socket. A client that does not ask for TLS is relayed as it is. Over the
Unix socket libpq and asyncpg ignore sslmode, so a TLS test must go through TCP like this."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import threading
from pathlib import Path

SSL_REQUEST = 80877103  # the SSLRequest code (PostgreSQL docs, "Message Formats")


class TlsProxy:
    """Run with ``with TlsProxy(socket_path, server_ssl) as proxy:``; ``proxy.port``, ``proxy.handshakes``.

    It runs its own event loop in a thread, so code under test may call ``asyncio.run``.
    """

    def __init__(self, socket_path: Path, context: ssl.SSLContext) -> None:
        self.socket_path, self.context = socket_path, context
        self.handshakes = 0
        self.plain = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(8)
            if struct.unpack("!ii", first) == (8, SSL_REQUEST):
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self.context)
                self.handshakes += 1
                first = b""
            else:
                self.plain += 1
            up_reader, up_writer = await asyncio.open_unix_connection(str(self.socket_path))
            if first:
                up_writer.write(first)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (ConnectionError, OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError):
            with contextlib.suppress(Exception):
                writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_exc) -> None:
        async def stop() -> None:
            self._server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class SilentServer:
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word (a hung server)."""

    def __init__(self) -> None:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *_exc) -> None:
        self._sock.close()
