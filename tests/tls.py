"""A test server that speaks TLS only, with a certificate from a CA made here with openssl.

`certificates(folder)` makes a CA, a server key and certificate it signed (CN localhost, SAN
DNS:localhost and IP:127.0.0.1), and a second CA that signed nothing (the "wrong CA").
`tls_server(...)` starts a PgServer from the session's template with ssl=on and a pg_hba.conf
that lets TCP clients in over TLS only (`hostssl`), configured through files in its data folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.pgserver import PgServer, _chown, server_folder
from tests.replication import append_settings

EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")  # quicker to make than RSA
SERVER_EXTENSIONS = """subjectAltName = DNS:localhost, IP:127.0.0.1
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
"""


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA that signed the server's certificate: what sslrootcert should name
    other_ca: Path  # a CA that signed nothing here
    server_cert: Path
    server_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, check=False)
    if done.returncode:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode()}")


def certificates(folder: Path) -> Certificates:
    folder.mkdir(parents=True, exist_ok=True)
    for name, subject in (("ca", "/CN=sidecar test CA"), ("other-ca", "/CN=some other CA")):
        _openssl("req", "-x509", "-new", "-nodes", *EC, "-keyout", f"{name}.key", "-out", f"{name}.crt",
                 "-days", "2", "-subj", subject, cwd=folder)
    _openssl("req", "-new", "-nodes", *EC, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
             cwd=folder)
    (folder / "server.ext").write_text(SERVER_EXTENSIONS)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=folder)
    return Certificates(folder / "ca.crt", folder / "other-ca.crt", folder / "server.crt", folder / "server.key")


@contextlib.contextmanager
def tls_server(bindir: Path, template: Path, certs: Certificates) -> Iterator[PgServer]:
    """A started server with ssl=on and TCP clients let in over TLS only; killed afterwards."""
    with server_folder("tls") as root:
        server = PgServer.from_template(bindir, template, root)
        for source, name in ((certs.server_cert, "server.crt"), (certs.server_key, "server.key")):
            shutil.copy(source, server.data / name)
        append_settings(server.data, {"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"})
        hba = server.data / "pg_hba.conf"
        hba.write_text("local all all trust\nlocal replication all trust\n"
                       "hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n")
        _chown(root)
        os.chmod(server.data / "server.key", 0o600)  # postgres refuses a key others can read
        try:
            server.start()
            yield server
        finally:
            server.kill()
