"""Connection strings parsed by libpq itself, with every password kept out of sight.

libpq's own parser (`PQconninfoParse`, through psycopg2's `parse_dsn`) reads
what libpq will connect with: URLs and key=value strings, multi-host lists,
every parameter it knows. What it gets wrong for us is its error messages,
which quote the input, password included; `_parse_error` keeps only what is
safe to print. We then hand psycopg2 keywords, never the string itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from . import redact

SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = "5432"
SECRET_PARAMS = frozenset({"password", "sslpassword"})
# libpq's environment variable for each parameter, so a command step's psql or Django finds the
# same server with the same options (https://www.postgresql.org/docs/current/libpq-envars.html).
ENVIRONMENT = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER",
    "password": "PGPASSWORD", "passfile": "PGPASSFILE", "service": "PGSERVICE", "options": "PGOPTIONS",
    "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT", "sslcrl": "PGSSLCRL", "sslcrldir": "PGSSLCRLDIR", "sslsni": "PGSSLSNI",
    "requirepeer": "PGREQUIREPEER", "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION", "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB", "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS", "channel_binding": "PGCHANNELBINDING",
    "require_auth": "PGREQUIREAUTH", "sslnegotiation": "PGSSLNEGOTIATION",
}
UNESCAPED_HINT = ("if the password holds '@', '/', ':', '?' or '#', percent-encode it (%40, %2F, ...) or give it"
                  " as password = \"${VAR}\" instead")
# A fragment libpq quotes in an error that is safe to repeat: a parameter's name, a lone character.
_SAFE_FRAGMENT = re.compile(r"[A-Za-z_]+|.")
_QUOTED = re.compile(r'"([^"]*)"')


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """libpq's parameters for one database; the secret ones (passwords) never in a repr."""

    params: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def get(self, key: str, default: str = "") -> str:
        return dict(self.params).get(key, default)

    @property
    def host(self) -> str:
        """One host, or libpq's comma-separated list; hostaddr when no host is named."""
        return self.get("host") or self.get("hostaddr")

    @property
    def port(self) -> str:
        return self.get("port", DEFAULT_PORT)

    @property
    def user(self) -> str:
        return self.get("user")

    @property
    def dbname(self) -> str:
        return self.get("dbname")

    @property
    def password(self) -> str | None:
        return dict(self.secrets).get("password")

    def with_database(self, dbname: str) -> ConnInfo:
        return replace(self, params=tuple(sorted({**dict(self.params), "dbname": dbname}.items())))

    def server(self) -> tuple[tuple[str, str], ...]:
        """Everything but the database: connections that share it reach the same server as the same user."""
        return tuple(p for p in self.params if p[0] != "dbname")

    def location(self) -> tuple[object, ...]:
        """Where the database is, as the URL says: each host with its port, the service, and the database name.
        Equal for two URLs that reach one database whatever their user, options or application_name."""
        return tuple(_pairs(self.host, self.port)), self.get("service"), self.dbname

    def describe(self) -> str:
        """user@host:port/dbname (each host with its port), for logs and errors; never a password."""
        if not self.host:
            return f"service {self.get('service')}" + (f" /{self.dbname}" if self.dbname else "")
        where = ",".join(f"{h}:{p or DEFAULT_PORT}" for h, p in _pairs(self.host, self.port))
        return f"{self.user}@{where}/{self.dbname}" if self.user else f"{where}/{self.dbname}"

    def keywords(self) -> dict[str, str]:
        return {**dict(self.params), **dict(self.secrets)}

    def url(self) -> str:
        """The full URL, passwords included: only for a command step's DATABASE_URL."""
        keywords = self.keywords()
        user, password = keywords.pop("user", ""), keywords.pop("password", None)
        dbname = keywords.pop("dbname", "")
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "")
        netloc = ""
        if "host" in keywords and "/" not in keywords["host"]:  # socket folders go in the query
            netloc = ",".join((f"[{h}]" if ":" in h else quote(h, safe="")) + (f":{p}" if p else "")
                              for h, p in _pairs(keywords.pop("host"), keywords.pop("port", "")))
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(keywords.items()))
        return (f"postgresql://{auth}@{netloc}/{quote(dbname, safe='')}" if auth else
                f"postgresql://{netloc}/{quote(dbname, safe='')}") + (f"?{query}" if query else "")

    def pg_environment(self) -> dict[str, str]:
        """libpq's PG* variables for every parameter, so `psql` or Django's settings find the same database."""
        return {ENVIRONMENT[k]: v for k, v in self.keywords().items() if k in ENVIRONMENT}


def _pairs(hosts: str, ports: str) -> list[tuple[str, str]]:
    """libpq's host and port lists side by side: one port applies to every host."""
    host_list, port_list = hosts.split(","), ports.split(",")
    return list(zip(host_list, port_list * len(host_list) if len(port_list) == 1 else port_list, strict=False))


def parse_url(url: str, password: str | None = None) -> ConnInfo:
    """Parse a postgresql:// URL (or a libpq key=value string) with libpq's own parser.

    `password`, when given, replaces the URL's (so a secret with '@' or '/'
    in it needs no escaping). Raises ValueError with a message that never
    contains a password.
    """
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import parse_dsn

    redact.register(password)
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() not in SCHEMES:
        raise ValueError("expected a URL like postgresql://user:password@host:5432/dbname")
    if sep and (rest.count("@") > 1 or "@" in rest.partition("/")[2]):
        # libpq ends the user part at the first '@' and the host part at the first '/': an unescaped
        # '@' or '/' in a password would put the rest of it in the host or database name, into logs.
        raise ValueError(f"'@' after the user part: {UNESCAPED_HINT}")
    try:
        parsed: dict[str, str] = parse_dsn(url)
    except ProgrammingError as exc:
        raise ValueError(_parse_error(str(exc), url)) from None
    for key in SECRET_PARAMS:
        redact.register(parsed.get(key))
    if password is not None:
        parsed["password"] = password
    info = ConnInfo(tuple(sorted((k, v) for k, v in parsed.items() if k not in SECRET_PARAMS)),
                    tuple(sorted((k, v) for k, v in parsed.items() if k in SECRET_PARAMS)))
    _check(info)
    return info


def _check(info: ConnInfo) -> None:
    """What libpq would only find out when connecting, or would quietly fill from the environment."""
    named_elsewhere = info.get("service")  # a service file may name host and database
    if not info.dbname and not named_elsewhere:
        raise ValueError("the URL names no database: end it with /DBNAME")
    if not info.host and not named_elsewhere:
        raise ValueError("the URL names no host")
    hosts, ports = info.host.split(","), info.port.split(",")
    for port in filter(None, ports):  # an empty entry in a list is the default port
        # The value is not repeated: a password with an unescaped '/' ends up here.
        if not port.isdigit():
            raise ValueError(f"a port is not a number; {UNESCAPED_HINT}")
        if not 0 < int(port) < 65536:
            raise ValueError("a port is out of range (1-65535)")
    if len(ports) not in (1, len(hosts)):
        raise ValueError(f"{len(ports)} ports for {len(hosts)} hosts: give one port, or one per host")
    for key, allowed in _ENUMERATED.items():
        value = info.get(key)
        if value and value not in allowed:  # libpq says so only when connecting (exit 3 then, a plan error here)
            shown = repr(value) if re.fullmatch(r"[A-Za-z-]{1,20}", value) else "its value"
            raise ValueError(f"{key}: {shown} is not one of libpq's: {', '.join(allowed)}")


# libpq's parameters with a fixed set of values (fe-connect.c, PostgreSQL 15)
_ENUMERATED = {"sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
               "gssencmode": ("disable", "prefer", "require"), "channel_binding": ("disable", "prefer", "require"),
               "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")}


def _parse_error(message: str, url: str) -> str:
    """libpq's complaint without the input it quotes: a fragment may hold the password.

    Only a quoted parameter name or a single character is kept; anything else
    is replaced by what it is, and a password in the URL's user part is masked
    besides, in case libpq ever says it unquoted.
    """
    text = message.strip().splitlines()[0].removeprefix("invalid dsn: ") if message.strip() else "invalid"
    text = _QUOTED.sub(lambda m: m[0] if _SAFE_FRAGMENT.fullmatch(m[1]) else "(the connection string)"
                       if m[1] == url else "(part of the connection string)", text)
    candidate = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
    for secret in (candidate, unquote(candidate)):
        if len(secret) >= redact.MIN_LENGTH:
            text = text.replace(secret, redact.MASK)
    return f"libpq cannot parse it: {redact.redact(text)}"
