"""PostgreSQL URLs parsed into keyword parameters, with the password kept out of sight.

We parse URLs ourselves and hand psycopg2 keywords, never a DSN string: libpq
echoes a malformed connection string, password included, in its errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote

from . import redact

SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432
# Query parameters passed through to libpq; anything else is a typo worth reporting.
LIBPQ_PARAMS = frozenset({
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "application_name",
    "options", "target_session_attrs", "gssencmode", "channel_binding", "connect_timeout",
    "host", "port", "user", "password", "dbname",
})


@dataclass(frozen=True, slots=True)
class ConnInfo:
    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)
    params: tuple[tuple[str, str], ...] = ()

    def with_database(self, dbname: str) -> ConnInfo:
        return replace(self, dbname=dbname)

    def describe(self) -> str:
        """host:port/dbname as user, for logs and errors; never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def keywords(self) -> dict[str, str | int]:
        kw: dict[str, str | int] = {"host": self.host, "port": self.port, "user": self.user,
                                    "dbname": self.dbname}
        if self.password is not None:
            kw["password"] = self.password
        kw.update(self.params)
        return kw

    def url(self) -> str:
        """The full URL, password included: only for a command step's environment."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else quote(self.host, safe="")
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in self.params)
        return f"postgresql://{auth}@{host}:{self.port}/{quote(self.dbname, safe='')}" + (
            f"?{query}" if query else "")

    def pg_environment(self) -> dict[str, str]:
        """libpq's PG* variables, so `psql` or Django's settings find the same database."""
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
               "PGDATABASE": self.dbname}
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        sslmode = dict(self.params).get("sslmode")
        if sslmode:
            env["PGSSLMODE"] = sslmode
        return env


def parse_url(url: str, password: str | None = None) -> ConnInfo:
    """Parse postgresql://user:password@host:port/dbname?param=value.

    `password`, when given, replaces the URL's (so a secret with '@' or '/'
    in it needs no escaping). Raises ValueError with a message that never
    contains the password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ValueError("expected a URL like postgresql://user:password@host:5432/dbname")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    user, colon, url_password = userinfo.partition(":")
    if colon:
        redact.register(unquote(url_password))
    redact.register(password)
    host, port = _split_host_port(unquote(hostport))
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in LIBPQ_PARAMS:
            raise ValueError(f"unknown connection parameter {key!r} in the URL's query")
        params[key] = value
    host = params.pop("host", host)
    port = params.pop("port", port)
    user = params.pop("user", unquote(user))
    dbname = params.pop("dbname", unquote(path))
    url_pw = params.pop("password", unquote(url_password) if colon else None)
    redact.register(url_pw)
    if not user:
        raise ValueError("the URL names no user: write postgresql://USER@host/dbname")
    if not dbname:
        raise ValueError("the URL names no database: end it with /DBNAME")
    if not host:
        raise ValueError("the URL names no host")
    try:
        port_number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"port {port!r} is not a number") from None
    if not 0 < port_number < 65536:
        raise ValueError(f"port {port_number} is out of range")
    return ConnInfo(host, port_number, user, dbname, password if password is not None else url_pw,
                    tuple(sorted(params.items())))


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = hostport.partition(":")
    return host, port
