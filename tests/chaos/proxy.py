"""A loopback TCP proxy that can pass, freeze or drop connections, for stalled-network tests."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class Proxy:
    """127.0.0.1:<port> -> 127.0.0.1:<upstream>. `mode` is "pass", "freeze" or "drop".

    freeze: nothing is forwarded either way (new connections are accepted but
    stall too) while every socket stays open, as a hung NAT or middlebox does;
    drop: every connection is closed at once, and new ones right after accept.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode: str) -> None:
        self.mode = mode
        if mode == "drop":
            with self.lock:
                for pair in self.pairs:
                    for s in pair:
                        with contextlib.suppress(OSError):
                            s.close()
                self.pairs.clear()

    def close(self) -> None:
        self.closed = True
        self.set("drop")
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "drop":
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self.closed:
                if self.mode == "freeze":
                    threading.Event().wait(0.05)
                    continue
                readable, _, _ = select.select([a, b], [], [], 0.05)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
