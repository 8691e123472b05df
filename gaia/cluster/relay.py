"""A user-space TCP relay that delays traffic: the delay fault, since tc netem is absent.

Clients connect to the relay's listening address; each connection is forwarded to the
target, and every chunk read in either direction is written out `delay_s` seconds after
it arrived (order kept). The delay can be changed while connections are open, which is
how the nemesis turns delay on and off. One asyncio loop in a daemon thread serves all
connections, so a relay costs one thread however many peers use it.

`python -m gaia.cluster.relay LISTEN TARGET --delay-ms D` runs one as a process (e.g. on
a remote host or inside a namespace).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import threading
import time

Address = tuple[str, int]
_CHUNK = 65536


class DelayRelay:
    """Forward `listen` -> `target`, delaying each direction by `delay_s` seconds."""

    def __init__(self, listen: Address, target: Address, delay_s: float = 0.0) -> None:
        self.requested = listen
        self.target = target
        self.delay_s = delay_s  # read at each chunk: changes apply to later traffic
        self.address: Address | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> DelayRelay:
        self._thread = threading.Thread(target=self._serve, name="gaia-relay", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._accept, *self.requested, reuse_address=True)
            )
            self.address = self._server.sockets[0].getsockname()[:2]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for task in list(self._tasks):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            writer.close()
            up_writer.close()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Read chunks as they come; a second task writes each when it is due."""
        queue: collections.deque[tuple[float, bytes]] = collections.deque()
        arrived = asyncio.Event()
        deliver = asyncio.ensure_future(self._deliver(queue, arrived, sink))
        try:
            while True:
                data = await source.read(_CHUNK)
                queue.append((time.monotonic() + self.delay_s, data))
                arrived.set()
                if not data:
                    break
            await deliver
        except OSError:
            pass  # a side reset the connection: the caller closes both
        finally:
            deliver.cancel()

    @staticmethod
    async def _deliver(
        queue: collections.deque[tuple[float, bytes]],
        arrived: asyncio.Event,
        sink: asyncio.StreamWriter,
    ) -> None:
        while True:
            while not queue:
                arrived.clear()
                await arrived.wait()
            due, data = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:  # EOF from the source: pass the half-close on
                with contextlib.suppress(OSError):
                    sink.write_eof()
                return
            sink.write(data)
            await sink.drain()

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if self._server is not None:
            loop.call_soon_threadsafe(self._server.close)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> DelayRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaia.cluster.relay", description=__doc__)
    parser.add_argument("listen", type=_address, help="HOST:PORT to listen on")
    parser.add_argument("target", type=_address, help="HOST:PORT to forward to")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay")
    args = parser.parse_args(argv)
    relay = DelayRelay(args.listen, args.target, args.delay_ms / 1000).start()
    print(f"relaying {relay.address} -> {args.target} with {args.delay_ms} ms", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        relay.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
