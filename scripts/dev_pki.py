"""A development CA and credentials, made with openssl: what `make up` runs TLS and
authentication with, and what the tests use to exercise them. Development only: the CA's
key sits next to its certificate (`.local/pki/` for `make up`, mode 0600).

    pki = DevPki(Path(".local/pki"))
    cert, key = pki.server("services", hosts=("localhost", "127.0.0.1"))
    cert, key = pki.client("matching-engine")        # a client certificate (mutual TLS)
    token = pki.token("gateway")                      # a bearer token in a file
    pki.principals("auth.toml", [Principal("gateway", ["submitter"], token=token)])
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.common.auth import token_hash

DAYS = 825


@dataclass(frozen=True)
class Principal:
    name: str
    roles: Sequence[str]
    token: Path | None = None  # the token file; its hash goes into the principals file
    certificate: str | None = None  # a client certificate's common name


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


@dataclass
class DevPki:
    directory: Path
    ca_name: str = "collateral-vault development CA"
    _openssl: str = field(default_factory=lambda: shutil.which("openssl") or "openssl")

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    def _run(self, *args: str) -> None:
        done = subprocess.run([self._openssl, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")

    def ensure_ca(self) -> None:
        """The CA, made once; a directory without one is emptied and started afresh."""
        if self.ca_cert.is_file() and self.ca_key.is_file():
            return
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, mode=0o700)
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", str(self.ca_key), "-out", str(self.ca_cert), "-days", str(DAYS), "-subj",
                  f"/CN={self.ca_name}", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.ca_key.chmod(0o600)

    def _issue(self, name: str, extensions: str) -> tuple[Path, Path]:
        self.ensure_ca()
        cert, key = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        if cert.is_file() and key.is_file():
            return cert, key
        with tempfile.TemporaryDirectory() as scratch:
            csr, ext = Path(scratch) / "req.csr", Path(scratch) / "ext.cnf"
            ext.write_text(extensions)
            self._run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
            self._run("x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey", str(self.ca_key),
                      "-CAcreateserial", "-out", str(cert), "-days", str(DAYS), "-sha256", "-extfile", str(ext))
        key.chmod(0o600)
        return cert, key

    def server(self, name: str, hosts: Sequence[str] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
        """A server certificate for `hosts` (names or IP addresses)."""
        names = []
        for host in hosts:
            try:
                ipaddress.ip_address(host)
                names.append(f"IP:{host}")
            except ValueError:
                names.append(f"DNS:{host}")
        return self._issue(name, "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                 f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(names)}\n")

    def client(self, name: str) -> tuple[Path, Path]:
        """A client certificate whose common name is `name`."""
        return self._issue(name, "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                 "extendedKeyUsage=clientAuth\n")

    def token(self, name: str) -> Path:
        """A file holding a new random bearer token (kept if it exists)."""
        self.ensure_ca()
        path = self.directory / f"{name}.token"
        if not path.is_file():
            _write_secret(path, secrets.token_urlsafe(32) + "\n")
        return path

    def principals(self, file_name: str, principals: Sequence[Principal]) -> Path:
        """The principals file (GRPC_AUTH_FILE) for `principals`: hashes, never tokens."""
        lines = []
        for principal in principals:
            lines += ["[[principal]]", f'name = "{principal.name}"',
                      "roles = [" + ", ".join(f'"{role}"' for role in principal.roles) + "]"]
            if principal.token is not None:
                lines.append(f'token_sha256 = "{token_hash(principal.token.read_text().strip())}"')
            if principal.certificate is not None:
                lines.append(f'certificate = "{principal.certificate}"')
            lines.append("")
        path = self.directory / file_name
        _write_secret(path, "\n".join(lines))
        return path
