"""psql as an oracle: a fake PostgreSQL server that records what psql sends, and a runner.

The server speaks just enough of protocol 3.0 for psql: it refuses SSL and GSS encryption,
trusts everyone (AuthenticationOk), reports the parameters psql's lexer depends on
(standard_conforming_strings=on, client_encoding=UTF8), answers every simple Query with
CommandComplete (EmptyQueryResponse for a blank one), and takes COPY ... FROM STDIN data.
It never runs anything and never fails a statement, so psql's only output is its own
complaints (such as "invalid command \\x" for a backslash meta-command).

Each psql run connects to a database name of its own, under which the server files the
session's messages; so runs may overlap.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import AnyStr

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608
PARAMETERS = {
    "server_version": "15.0",
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "standard_conforming_strings": "on",
    "DateStyle": "ISO",
    "integer_datetimes": "on",
}
# What a server would take for COPY ... FROM STDIN (the statement may start with comments).
_COPY_FROM_STDIN = re.compile(rb"COPY\b.*\bFROM\s+STDIN\b", re.I | re.S)
_LEADING_NOISE = re.compile(rb"\s+|--[^\r\n]*")


def find_psql() -> Path | None:
    """Debian's psql (the newest /usr/lib/postgresql/N/bin/psql), else `psql` on PATH."""
    candidates = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin/psql") if p.parent.parent.name.isdigit()),
                        key=lambda p: int(p.parent.parent.name))
    if candidates:
        return candidates[-1]
    found = shutil.which("psql")
    return Path(found) if found else None


@dataclass
class Session:
    """What one connection sent: each Query's bytes in order, and each COPY's data."""

    queries: list[bytes] = field(default_factory=list)
    copies: list[bytes] = field(default_factory=list)  # the CopyData of each COPY FROM STDIN, joined
    copy_failed: list[str] = field(default_factory=list)  # CopyFail messages
    terminated: bool = False  # the client said goodbye (Terminate) rather than just hanging up
    closed: threading.Event = field(default_factory=threading.Event)  # the connection is over

    @property
    def statements(self) -> list[str]:
        return [q.decode("utf-8", "surrogateescape") for q in self.queries]


class _Closed(Exception):
    """The client hung up."""


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise _Closed
        data += chunk
    return bytes(data)


def _message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


READY = _message(b"Z", b"I")


def code_start(query: AnyStr, noise: re.Pattern[AnyStr]) -> int:
    """Where the statement's code starts: past `noise` (white space, `--` comments) and /* */
    comments, nested ones too; one never closed runs to the end. For bytes and for str alike."""
    opening, closing = ("/*", "*/") if isinstance(query, str) else (b"/*", b"*/")
    i = 0
    while True:
        if m := noise.match(query, i):
            i = m.end()
        elif query.startswith(opening, i):
            depth = 0
            while i < len(query):
                if query.startswith(opening, i):
                    depth, i = depth + 1, i + 2
                elif query.startswith(closing, i):
                    depth, i = depth - 1, i + 2
                    if depth == 0:
                        break
                else:
                    i += 1
        else:
            return i


class _NeverStarted(Exception):
    """psql's connection ended before its first query: the run is tried once more."""


class FakeServer:
    """The fake server, listening on 127.0.0.1 on a free port while in its `with` block."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.errors: list[str] = []  # protocol surprises, for the test to assert on
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._pids = itertools.count(1000)
        self._accepter = threading.Thread(target=self._accept, name="fake-pg-accept", daemon=True)

    def __enter__(self) -> FakeServer:
        self._accepter.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._listener.close()

    def session(self, database: str) -> Session:
        with self._lock:
            return self.sessions.setdefault(database, Session())

    def forget(self, database: str) -> None:
        with self._lock:
            self.sessions.pop(database, None)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(conn,), name="fake-pg-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        session: list[Session] = []
        with conn, contextlib.suppress(_Closed, OSError):
            try:
                self._converse(conn, session)
            except (_Closed, OSError):
                pass
            except Exception as exc:  # a bug here must not pass for psql's silence
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                for s in session:
                    s.closed.set()

    def _startup(self, conn: socket.socket) -> dict[str, str] | None:
        while True:
            length, code = struct.unpack("!II", _recv_exactly(conn, 8))
            body = _recv_exactly(conn, length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                conn.sendall(b"N")
                continue
            if code == CANCEL_REQUEST:
                return None
            if code != PROTOCOL_3:
                raise ValueError(f"unexpected startup code {code}")
            fields = body.rstrip(b"\0").split(b"\0")  # name, value, ..., then a NUL of its own
            return {k.decode(): v.decode() for k, v in zip(fields[0::2], fields[1::2], strict=True)}

    def _converse(self, conn: socket.socket, found: list[Session]) -> None:
        params = self._startup(conn)
        if params is None:
            return
        session = self.session(params.get("database", params.get("user", "")))
        found.append(session)
        hello = [_message(b"R", struct.pack("!I", 0))]
        hello += [_message(b"S", _cstring(k) + _cstring(v)) for k, v in PARAMETERS.items()]
        hello += [_message(b"K", struct.pack("!II", next(self._pids), 42)), READY]
        conn.sendall(b"".join(hello))
        while True:
            kind = _recv_exactly(conn, 1)
            (length,) = struct.unpack("!I", _recv_exactly(conn, 4))
            body = _recv_exactly(conn, length - 4)
            if kind == b"X":
                session.terminated = True
                return
            if kind != b"Q":
                raise ValueError(f"unexpected message {kind!r} outside COPY")
            query = body[:-1]  # without its terminating NUL
            session.queries.append(query)
            if not query.strip():
                conn.sendall(_message(b"I") + READY)
            elif _COPY_FROM_STDIN.match(query, code_start(query, _LEADING_NOISE)):
                self._copy_in(conn, session)
            else:
                words = query.split()
                tag = words[0].decode("ascii", "replace").upper() if words else "OK"
                conn.sendall(_message(b"C", _cstring(tag)) + READY)

    def _copy_in(self, conn: socket.socket, session: Session) -> None:
        conn.sendall(_message(b"G", struct.pack("!bhh", 0, 1, 0)))  # text format, one column
        data = bytearray()
        while True:
            kind = _recv_exactly(conn, 1)
            (length,) = struct.unpack("!I", _recv_exactly(conn, 4))
            body = _recv_exactly(conn, length - 4)
            if kind == b"d":
                data += body
            elif kind == b"c":
                session.copies.append(bytes(data))
                conn.sendall(_message(b"C", _cstring("COPY 0")) + READY)
                return
            elif kind == b"f":
                session.copies.append(bytes(data))
                session.copy_failed.append(body[:-1].decode("utf-8", "replace"))
                error = b"SERROR\0VERROR\0C57014\0MCOPY from stdin failed\0\0"
                conn.sendall(_message(b"E", error) + READY)
                return
            elif kind in (b"H", b"S"):  # Flush, Sync: ignored during COPY, as a server does
                continue
            else:
                raise ValueError(f"unexpected message {kind!r} during COPY")


@dataclass
class PsqlRun:
    """One psql run over one file: what it sent, and what it printed."""

    statements: list[str]
    copies: list[bytes]
    stdout: str
    stderr: str
    returncode: int

    @property
    def saw_meta_command(self) -> bool:
        """psql took a backslash outside a literal as a meta-command it does not know.

        (Files here hold no valid meta-command, which might run something; the only backslash
        commands they can produce are unknown ones such as `\\'`, which psql refuses noisily.)
        """
        return "invalid command \\" in self.stderr


class Psql:
    """Runs `psql -f FILE` against a FakeServer; each run gets a database name of its own."""

    def __init__(self, binary: Path, server: FakeServer, workdir: Path) -> None:
        self.binary, self.server, self.workdir = binary, server, workdir
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self.env.update(PGCONNECT_TIMEOUT="5", PGGSSENCMODE="disable", LC_ALL="C.UTF-8",
                        PSQL_HISTORY=os.devnull, PGAPPNAME="psql-oracle")

    def run(self, path: Path, timeout: float = 30) -> PsqlRun:
        try:
            return self._run(path, timeout)
        except _NeverStarted:  # seen once in CI under load: the connection, not the split, is not under test
            return self._run(path, timeout)

    def _run(self, path: Path, timeout: float) -> PsqlRun:
        with self._lock:
            database = f"d{next(self._names)}"
        session = self.server.session(database)
        # -X: no ~/.psqlrc. cwd is a scratch folder, stdin empty: nothing psql does can reach further.
        done = subprocess.run(
            [self.binary, "-X", "-q", "-v", "ON_ERROR_STOP=0", "-h", "127.0.0.1", "-p", str(self.server.port),
             "-U", "u", "-d", database, "-f", path],
            cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
            check=False)
        stdout, stderr = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        session.closed.wait(5)
        self.server.forget(database)
        if not session.terminated and not session.queries and "connection to server" in stderr:
            raise _NeverStarted(stderr)
        if not session.terminated:
            raise RuntimeError(f"psql did not finish a session with the fake server (exit {done.returncode}):"
                               f"\n{stdout}{stderr}\nserver errors: {self.server.errors}")
        return PsqlRun(session.statements, session.copies, stdout, stderr, done.returncode)
