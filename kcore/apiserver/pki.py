"""The cluster's public-key infrastructure: CA, serving and client certificates, tokens.

Everything lives under ``<data-dir>/pki/`` (the join token at ``<data-dir>/token``, as
the design promises). On first start it is generated; on every later start it is
loaded, so kubeconfigs and joined agents keep working across restarts. Only the API
serving certificate is ever re-issued automatically: when it lacks a name the server
now answers to (a new node name or bind address), is close to expiry, or was not
signed by the current CA.

ECDSA P-256 keys throughout: small, fast to generate, supported by every TLS client
kcore cares about (kubectl, the Python client, OpenSSL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kcore.fileutil import write_private_file
from kcore.log import get_logger

log = get_logger("pki")

CA_DAYS = 3650
SERVING_DAYS = 365
CLIENT_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
ADMIN_USER = "kubernetes-admin"
MASTERS_GROUP = "system:masters"
DEFAULT_SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
JOIN_TOKEN_PREFIX = "K10"


class PKIError(Exception):
    """The PKI on disk is unusable (e.g. a key that does not match its certificate)."""


# --------------------------------------------------------------------------- helpers


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PKIError("only ECDSA keys are supported")
    return key


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _general_names(names: list[str]) -> list[x509.GeneralName]:
    """IP literals become IPAddress SANs, everything else DNSName."""
    out: list[x509.GeneralName] = []
    for name in names:
        if _is_ip(name):
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        else:
            out.append(x509.DNSName(name))
    return out


def cert_sans(cert: x509.Certificate) -> set[str]:
    """All DNS and IP subject alternative names of ``cert``, as strings."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = set(ext.get_values_for_type(x509.DNSName))
    names.update(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return names


def _normalize_name(name: str) -> str:
    """Compare IPs by value (``::1`` and ``0:0::1`` are one address)."""
    return str(ipaddress.ip_address(name)) if _is_ip(name) else name.lower()


def serving_names(node_name: str, bind_address: str, extra_sans: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The names the API serving certificate must carry, deduplicated, in a stable order."""
    names: list[str] = []
    if bind_address and bind_address not in ("0.0.0.0", "::", ""):
        names.append(bind_address)
    names += ["127.0.0.1", "::1", "localhost", node_name, *DEFAULT_SERVICE_NAMES, *extra_sans]
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        norm = _normalize_name(name)
        if name and norm not in seen:
            seen.add(norm)
            out.append(name)
    return out


def signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """Whether ``cert`` was issued by ``ca_cert`` (issuer name and signature both match)."""
    if cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def ca_hash(ca_pem: bytes) -> str:
    """SHA-256 of the CA certificate's DER form: what a join token pins."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def new_join_token(ca_pem: bytes) -> str:
    """A k3s-style join token, ``K10<ca-sha256>::server:<secret>``.

    The CA hash lets an agent that has nothing but the token verify the server's CA
    before trusting it; the secret is what authenticates the agent.
    """
    return f"{JOIN_TOKEN_PREFIX}{ca_hash(ca_pem)}::server:{secrets.token_hex(16)}"


def join_token_ca_hash(token: str) -> str | None:
    """The CA hash pinned in a full join token, or None for a bare secret."""
    if token.startswith(JOIN_TOKEN_PREFIX) and "::" in token:
        return token[len(JOIN_TOKEN_PREFIX) : token.index("::")]
    return None


def client_ssl_context(
    ca_pem: bytes,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
) -> ssl.SSLContext:
    """A TLS client context trusting only ``ca_pem``, optionally presenting a client cert.

    ``ssl`` can only load a certificate chain from files, so an in-memory pair goes
    through a private temporary directory that is removed straight away.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=ca_pem.decode())
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert_pem is not None:
        if key_pem is None:
            raise ValueError("a client certificate needs its private key")
        with tempfile.TemporaryDirectory(prefix="kcore-tls-") as tmp:
            cert_path = Path(tmp) / "client.crt"
            key_path = Path(tmp) / "client.key"
            write_private_file(cert_path, cert_pem)
            write_private_file(key_path, key_pem)
            ctx.load_cert_chain(cert_path, key_path)
    return ctx


# --------------------------------------------------------------------------- issuing


def _create_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kcore-ca@{int(_now().timestamp())}")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    organizations: list[str] | tuple[str, ...] = (),
    sans: list[str] | None = None,
    server: bool = False,
    client: bool = False,
    days: int = CLIENT_DAYS,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Issue a leaf certificate signed by the CA; O attributes carry Kubernetes groups."""
    key = _new_key()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


# --------------------------------------------------------------------------- the PKI


@dataclass
class ClusterPKI:
    """Loaded key material of one cluster; build it with :meth:`load_or_create`."""

    pki_dir: Path
    token_path: Path
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    serving_cert: x509.Certificate
    admin_cert_pem: bytes
    admin_key_pem: bytes
    sa_private_key: ec.EllipticCurvePrivateKey
    admin_token: str
    join_token: str
    generated: list[str] = field(default_factory=list)

    # ---- file layout (one place, so the server, the CLI and tests agree)

    @staticmethod
    def paths(data_dir: Path) -> dict[str, Path]:
        """Where every artifact lives under ``data_dir``."""
        pki = Path(data_dir) / "pki"
        return {
            "ca.crt": pki / "ca.crt",
            "ca.key": pki / "ca.key",
            "apiserver.crt": pki / "apiserver.crt",
            "apiserver.key": pki / "apiserver.key",
            "admin.crt": pki / "admin.crt",
            "admin.key": pki / "admin.key",
            "sa.key": pki / "sa.key",
            "sa.pub": pki / "sa.pub",
            "admin-token": pki / "admin-token",
            "token": Path(data_dir) / "token",
        }

    @property
    def ca_pem(self) -> bytes:
        return _cert_pem(self.ca_cert)

    @property
    def serving_cert_path(self) -> Path:
        return self.pki_dir / "apiserver.crt"

    @property
    def serving_key_path(self) -> Path:
        return self.pki_dir / "apiserver.key"

    @property
    def ca_cert_path(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def sa_public_key(self) -> ec.EllipticCurvePublicKey:
        return self.sa_private_key.public_key()

    @property
    def serving_sans(self) -> set[str]:
        return cert_sans(self.serving_cert)

    # ---- construction

    @classmethod
    def load_or_create(
        cls,
        data_dir: Path,
        *,
        node_name: str,
        bind_address: str,
        extra_sans: list[str] | tuple[str, ...] = (),
    ) -> "ClusterPKI":
        """Load the PKI from ``data_dir``, generating whatever is missing.

        A missing CA invalidates every certificate it signed, so those are re-issued
        with it; everything else is created only when absent, except the serving
        certificate, which is re-issued when it no longer fits (see module docstring).
        """
        data_dir = Path(data_dir)
        p = cls.paths(data_dir)
        p["ca.crt"].parent.mkdir(parents=True, exist_ok=True)
        os.chmod(p["ca.crt"].parent, 0o700)
        generated: list[str] = []

        # CA
        if p["ca.crt"].exists() and p["ca.key"].exists():
            ca_cert = x509.load_pem_x509_certificate(p["ca.crt"].read_bytes())
            ca_key = _load_key(p["ca.key"].read_bytes())
            if ca_cert.public_key().public_numbers() != ca_key.public_key().public_numbers():
                raise PKIError(f"{p['ca.key']} does not match {p['ca.crt']}")
        else:
            ca_cert, ca_key = _create_ca()
            write_private_file(p["ca.key"], _key_pem(ca_key))
            write_private_file(p["ca.crt"], _cert_pem(ca_cert), mode=0o644)
            generated.append("ca")

        # serving certificate
        wanted = serving_names(node_name, bind_address, list(extra_sans))
        serving_cert: x509.Certificate | None = None
        if p["apiserver.crt"].exists() and p["apiserver.key"].exists():
            serving_cert = x509.load_pem_x509_certificate(p["apiserver.crt"].read_bytes())
            problem = _serving_problem(serving_cert, ca_cert, wanted)
            if problem:
                log.info("reissuing API serving certificate", reason=problem)
                serving_cert = None
        if serving_cert is None:
            serving_cert, serving_key = _issue(
                ca_cert, ca_key, common_name="kube-apiserver", sans=wanted, server=True, days=SERVING_DAYS
            )
            write_private_file(p["apiserver.key"], _key_pem(serving_key))
            write_private_file(p["apiserver.crt"], _cert_pem(serving_cert), mode=0o644)
            generated.append("apiserver")

        # admin client certificate
        admin_ok = p["admin.crt"].exists() and p["admin.key"].exists()
        if admin_ok:
            admin_cert_pem = p["admin.crt"].read_bytes()
            admin_key_pem = p["admin.key"].read_bytes()
            existing = x509.load_pem_x509_certificate(admin_cert_pem)
            admin_ok = signed_by(existing, ca_cert) and existing.not_valid_after_utc - _now() > RENEW_BEFORE
        if not admin_ok:
            cert, key = _issue(
                ca_cert, ca_key, common_name=ADMIN_USER, organizations=[MASTERS_GROUP], client=True, days=CLIENT_DAYS
            )
            admin_cert_pem, admin_key_pem = _cert_pem(cert), _key_pem(key)
            write_private_file(p["admin.key"], admin_key_pem)
            write_private_file(p["admin.crt"], admin_cert_pem, mode=0o644)
            generated.append("admin")

        # service-account signing key pair
        if p["sa.key"].exists():
            sa_key = _load_key(p["sa.key"].read_bytes())
        else:
            sa_key = _new_key()
            write_private_file(p["sa.key"], _key_pem(sa_key))
            generated.append("sa")
        if not p["sa.pub"].exists() or p["sa.pub"].read_bytes() != _public_pem(sa_key.public_key()):
            write_private_file(p["sa.pub"], _public_pem(sa_key.public_key()), mode=0o644)

        # tokens
        admin_token = _load_or_create_token(p["admin-token"], lambda: secrets.token_urlsafe(32), generated)
        if "ca" in generated and p["token"].exists():
            pinned = join_token_ca_hash(p["token"].read_text().strip())
            if pinned is not None and pinned != ca_hash(_cert_pem(ca_cert)):
                p["token"].unlink()  # it pins a CA that no longer exists
        join_token = _load_or_create_token(p["token"], lambda: new_join_token(_cert_pem(ca_cert)), generated)

        if generated:
            log.info("generated cluster PKI material", items=generated, pki_dir=str(p["ca.crt"].parent))
        return cls(
            pki_dir=p["ca.crt"].parent,
            token_path=p["token"],
            ca_cert=ca_cert,
            ca_key=ca_key,
            serving_cert=serving_cert,
            admin_cert_pem=admin_cert_pem,
            admin_key_pem=admin_key_pem,
            sa_private_key=sa_key,
            admin_token=admin_token,
            join_token=join_token,
            generated=generated,
        )

    # ---- operations

    def issue_client_cert(
        self, common_name: str, organizations: list[str], days: int = CLIENT_DAYS
    ) -> tuple[bytes, bytes]:
        """A client certificate for a node or component: CN is the user, O the groups."""
        cert, key = _issue(
            self.ca_cert, self.ca_key, common_name=common_name, organizations=organizations, client=True, days=days
        )
        return _cert_pem(cert), _key_pem(key)

    def ssl_server_context(self, *, verify_client_certs: bool = True) -> ssl.SSLContext:
        """TLS context for the API server.

        Client certificates are requested and, when sent, verified against the CA
        (``CERT_OPTIONAL``): a certificate from another CA fails the handshake, while
        a client with no certificate still connects and may use a bearer token.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.serving_cert_path, self.serving_key_path)
        if verify_client_certs:
            ctx.load_verify_locations(cadata=self.ca_pem.decode())
            ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def ssl_client_context(
        self, cert_pem: bytes | None = None, key_pem: bytes | None = None
    ) -> ssl.SSLContext:
        """TLS client context for components: trusts the cluster CA, optional client cert."""
        return client_ssl_context(self.ca_pem, cert_pem, key_pem)


def _serving_problem(cert: x509.Certificate, ca_cert: x509.Certificate, wanted: list[str]) -> str | None:
    """Why an existing serving certificate cannot be kept, or None if it can."""
    if not signed_by(cert, ca_cert):
        return "not signed by the cluster CA"
    have = {_normalize_name(n) for n in cert_sans(cert)}
    missing = [n for n in wanted if _normalize_name(n) not in have]
    if missing:
        return f"missing SANs {missing}"
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return "expires soon"
    return None


def _load_or_create_token(path: Path, make: Callable[[], str], generated: list[str]) -> str:
    """Read a token file, or create it (0600, atomically) when absent or empty."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = make()
    write_private_file(path, token + "\n")
    generated.append(path.name)
    return token
