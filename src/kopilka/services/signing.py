"""The installation's signing key and PAdES signatures on PDF statements (ADR 0025).

The key is an ECDSA P-256 key (fast to make and to sign with, read by every PAdES
validator) with a self-signed X.509 certificate, made by
``kopilka settlement keygen`` or on first use and kept in ``signing_keys`` (the newest
row signs; older statements keep their certificate inside them).  An installation with a
certificate from a CA points ``KOPILKA_SIGNING_KEY`` and ``KOPILKA_SIGNING_CERT`` at PEM
files instead; those win over the database.

A statement is signed with pyHanko as PAdES B-B (``ETSI.CAdES.detached``): anyone can
check it with pyHanko, Adobe Reader or another validator given the certificate, which
``kopilka settlement keygen --show`` prints.  It proves that the file is the one the
installation made; it is not a qualified electronic signature (КЭП) of the operator.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from sqlalchemy import insert, select

from kopilka.services.runtime import Runtime
from kopilka.store import tables as t

KEY_ENV = "KOPILKA_SIGNING_KEY"
CERT_ENV = "KOPILKA_SIGNING_CERT"
DEFAULT_SUBJECT = "Kopilka settlement statements"


@dataclass(frozen=True)
class SigningKey:
    subject: str
    key_pem: bytes
    cert_pem: bytes
    fingerprint: str  # SHA-256 of the certificate (DER), hex

    @property
    def cert_der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert_pem).public_bytes(
            serialization.Encoding.DER
        )


def make_key(subject: str, now: datetime, *, years: int = 10) -> SigningKey:
    """A new ECDSA P-256 key and a self-signed certificate for signing documents."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject[:64])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    return SigningKey(subject, key_pem, cert_pem, hashlib.sha256(der).hexdigest())


def _from_files() -> SigningKey | None:
    key_file, cert_file = os.environ.get(KEY_ENV), os.environ.get(CERT_ENV)
    if not key_file or not cert_file:
        return None
    with open(key_file, "rb") as kf, open(cert_file, "rb") as cf:
        key_pem, cert_pem = kf.read(), cf.read()
    cert = x509.load_pem_x509_certificate(cert_pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    subject = cert.subject.rfc4514_string()
    return SigningKey(subject, key_pem, cert_pem, hashlib.sha256(der).hexdigest())


async def do_keygen(rt: Runtime, *, subject: str = DEFAULT_SUBJECT) -> SigningKey:
    """Make a new key; from now on it signs (older statements keep their certificate)."""
    sk = make_key(subject, rt.now())
    async with rt.engine.begin() as conn:
        await conn.execute(
            insert(t.signing_keys),
            {
                "subject": sk.subject,
                "key_pem": sk.key_pem.decode(),
                "cert_pem": sk.cert_pem.decode(),
                "fingerprint": sk.fingerprint,
                "created_at": rt.now(),
            },
        )
    return sk


async def current_key(rt: Runtime, *, create: bool = True) -> SigningKey | None:
    """The key that signs: the configured files, else the newest stored key, else (when
    ``create``) a new one."""
    configured = _from_files()
    if configured is not None:
        return configured
    sk = t.signing_keys.c
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(sk.subject, sk.key_pem, sk.cert_pem, sk.fingerprint)
                .order_by(sk.id.desc())
                .limit(1)
            )
        ).first()
    if row is not None:
        return SigningKey(row.subject, row.key_pem.encode(), row.cert_pem.encode(), row.fingerprint)
    return await do_keygen(rt) if create else None


async def sign_pdf(pdf: bytes, key: SigningKey, *, reason: str, location: str = "") -> bytes:
    """The PDF with a PAdES signature of the whole file by ``key``."""
    # pyHanko is imported when a statement is signed, not with the CLI or the app: it
    # takes a while to load, and it warns at import about DSA, which nothing here uses.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers
        from pyhanko_certvalidator.registry import SimpleCertificateStore

    signing_key = load_private_key_from_pemder_data(key.key_pem, passphrase=None)
    (cert,) = load_certs_from_pemder_data(key.cert_pem)
    signer = signers.SimpleSigner(
        signing_cert=cert,
        signing_key=signing_key,
        cert_registry=SimpleCertificateStore.from_certs([cert]),  # type: ignore[no-untyped-call]
    )
    meta = signers.PdfSignatureMetadata(
        field_name="Signature",
        reason=reason,
        location=location or None,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    out = await signers.async_sign_pdf(writer, meta, signer=signer)
    data: bytes = out.getvalue()
    return data
