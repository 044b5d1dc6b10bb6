"""A TCP relay in front of one dependency that can add latency each way: ``tidings chaos``'s network delay, where
``tc netem`` is missing from the kernel.

It runs as a process of its own (``python -m tidings.bench.relay HOST PORT DELAY_S``), so that the load client's
work never delays the traffic it relays: it prints the port it listens on, holds every chunk for ``DELAY_S`` each
way after SIGUSR1 and none after SIGUSR2, and stops on SIGTERM. Written here because it is a few lines on asyncio
streams, and the tools made for it (toxiproxy) are servers of their own, not Python libraries.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time


class DelayProxy:
    """Relays every connection to ``host:port``, holding each chunk for ``delay_s`` each way while it is set."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.delay_s = 0.0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and close every relayed connection (both ends): their pumps end on their own."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except OSError:
            pass
        finally:
            for end in (writer, up_writer):
                end.close()
            self._writers -= {writer, up_writer}

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy ``source`` to ``sink``; each chunk leaves ``delay_s`` after it came (latency, not a slower link)."""
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            try:
                while chunk := await source.read(65536):
                    due.put_nowait((time.monotonic() + self.delay_s, chunk))
            finally:
                due.put_nowait((0.0, b""))  # the end, however it came

        reading = asyncio.ensure_future(read())
        try:
            while True:
                at, chunk = await due.get()
                if not chunk:
                    break
                if (wait := at - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                sink.write(chunk)
                await sink.drain()
            sink.close()
        finally:
            reading.cancel()


async def serve(host: str, port: int, delay_s: float) -> None:
    proxy = DelayProxy(host, port)
    await proxy.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(proxy, "delay_s", delay_s))
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(proxy, "delay_s", 0.0))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(proxy.port, flush=True)
    await stop.wait()
    await proxy.close()


def main() -> None:
    host, port, delay_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, delay_s))


if __name__ == "__main__":
    main()
