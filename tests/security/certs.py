"""Throwaway PKI for the TLS tests, made with ``cryptography``: CAs, server
certificates for ``localhost``/``127.0.0.1``, client certificates, PEM files."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    """A certificate, its key, and where their PEM files are."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @property
    def serial(self) -> int:
        return self.cert.serial_number


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(issued_cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, directory: Path, stem: str) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(issued_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Issued(issued_cert, key, cert_path, key_path)


def make_ca(directory: Path, stem: str, common_name: str) -> Issued:
    """A self-signed CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _write(cert, key, directory, stem)


def issue(ca: Issued, directory: Path, stem: str, common_name: str, *, dns: tuple[str, ...] = (),
          ips: tuple[str, ...] = (), client: bool = False) -> Issued:
    """A leaf certificate signed by ``ca``: a server one (``dns``/``ips`` as SANs) or a client one."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _write(builder.sign(ca.key, hashes.SHA256()), key, directory, stem)


def replace_files(target: Issued, source: Issued) -> None:
    """Put ``source``'s certificate and key in place of ``target``'s files, the way
    cert-manager or certbot do: write aside, then rename over."""
    for src, dst in ((source.key_path, target.key_path), (source.cert_path, target.cert_path)):
        tmp = dst.with_suffix(dst.suffix + ".tmp")
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, dst)


@dataclass
class PKI:
    """Everything the tests need, in one directory."""

    directory: Path
    ca: Issued
    other_ca: Issued
    server: Issued  #: localhost / 127.0.0.1, signed by ``ca``
    server_next: Issued  #: the same names, another key: the rotation target
    alpha: Issued  #: alpha.test, for SNI selection
    beta: Issued  #: beta.test, for SNI selection
    client: Issued  #: client certificate signed by ``ca``
    stranger: Issued  #: client certificate signed by ``other_ca``

    @classmethod
    def create(cls, directory: Path) -> "PKI":
        ca = make_ca(directory, "ca", "frontier test CA")
        other = make_ca(directory, "other-ca", "someone else's CA")
        names = {"dns": ("localhost",), "ips": ("127.0.0.1",)}
        return cls(
            directory=directory, ca=ca, other_ca=other,
            server=issue(ca, directory, "server", "frontier gateway", **names),
            server_next=issue(ca, directory / "next", "server", "frontier gateway (rotated)", **names),
            alpha=issue(ca, directory, "alpha", "alpha", dns=("alpha.test",), ips=("127.0.0.1",)),
            beta=issue(ca, directory, "beta", "beta", dns=("beta.test",)),
            client=issue(ca, directory, "client", "device-1", client=True),
            stranger=issue(other, directory, "stranger", "device-x", client=True),
        )
