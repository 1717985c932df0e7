"""A secured Temporal endpoint for the tests: Debian's nginx terminating TLS in front of a dev server
(`grpc_pass`), with certificates from a private CA made here (X.509 v3 with SANs).

Modes: `tls` (server TLS), `mtls` (a client certificate from the CA is required) and `apikey` (TLS, and
only `authorization: Bearer <key>` is let through).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import free_port, spawn

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # somebody else's CA: trusting it alone must fail the handshake
    stranger_cert: Path  # a client certificate somebody else's CA signed: mutual TLS must refuse it
    stranger_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path = path.with_suffix(".key")
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(folder: Path) -> Pki:
    """A private CA, a server certificate for localhost/127.0.0.1 and a client certificate it signed; and
    somebody else's CA with a client certificate of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Atelier test CA", ca_key, _name("Atelier test CA"), ca_key, ca=True)
    other = _certificate("Somebody else's CA", other_key, _name("Somebody else's CA"), other_key, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = _certificate("localhost", server_key, ca.subject, ca_key, server=True)
    client = _certificate("atelier-worker", client_key, ca.subject, ca_key)
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _certificate("atelier-worker", stranger_key, other.subject, other_key)
    _write(folder / "ca.pem", ca)
    _write(folder / "other-ca.pem", other)
    _write(folder / "server.pem", server, server_key)
    _write(folder / "client.pem", client, client_key)
    _write(folder / "stranger.pem", stranger, stranger_key)
    return Pki(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
        other_ca=folder / "other-ca.pem",
        stranger_cert=folder / "stranger.pem",
        stranger_key=folder / "stranger.key",
    )


def _config(folder: Path, pki: Pki, port: int, upstream: str, mode: str, api_key: str) -> str:
    client_auth = f"ssl_client_certificate {pki.ca}; ssl_verify_client on;" if mode == "mtls" else ""
    # a refused key gets gRPC's own answer, as Temporal Cloud gives it: status 16 UNAUTHENTICATED
    refuse = (
        "add_header content-type application/grpc always; add_header grpc-status 16 always; "
        'add_header grpc-message "invalid API key" always; return 200;'
    )
    key_check = f'if ($http_authorization != "Bearer {api_key}") {{ {refuse} }}' if mode == "apikey" else ""
    temp = " ".join(
        f"{kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""  # workers can then read the test's private folder
    return f"""
{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log notice;
events {{ worker_connections 256; }}
http {{
  access_log {folder}/access.log;
  {temp}
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {pki.server_cert};
    ssl_certificate_key {pki.server_key};
    {client_auth}
    location / {{
      {key_check}
      grpc_pass grpc://{upstream};
      grpc_read_timeout 300s;
      grpc_send_timeout 300s;
    }}
  }}
}}
"""


class SecuredProxy:
    """nginx in the foreground, stopped by `close()` (or the context manager)."""

    def __init__(self, folder: Path, pki: Pki, upstream: str, mode: str, api_key: str = "") -> None:
        self.folder = folder / f"nginx-{mode}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        conf = self.folder / "nginx.conf"
        conf.write_text(_config(self.folder, pki, self.port, upstream, mode, api_key))
        self.process = spawn(
            [NGINX, "-c", str(conf), "-p", str(self.folder), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "stderr.log", "wb"),  # noqa: SIM115 - owned by the process
        )
        deadline = time.monotonic() + 20
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"nginx did not start: {(self.folder / 'stderr.log').read_text()[-500:]}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> SecuredProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
