"""A development signing certificate for Content Credentials, made once on first run when none is configured.

C2PA refuses self-signed signing certificates, so this is a two-step chain: a "development CA" and an end-entity
signer it issued (ES256, digitalSignature, emailProtection EKU — what C2PA's certificate profile asks for). Both are
named so nobody mistakes them for a real identity. Operators configure their own with IMAGEBOT_PROVENANCE__*.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_NAME = "imagebot DEVELOPMENT CA - not a trusted identity"
SIGNER_NAME = "imagebot DEVELOPMENT signer - not a trusted identity"
VALID_DAYS = 3650


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes  # signer certificate, then its issuers
    key_pem: bytes
    root_pem: (
        bytes | None
    )  # the development CA, to trust when reading our own images; None for real identities


def development_identity(folder: Path) -> SigningIdentity:
    """The development identity kept in `folder`, made on first use."""
    chain, key, root = folder / "dev-chain.pem", folder / "dev-signer.key", folder / "dev-ca.pem"
    if not (chain.exists() and key.exists() and root.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        identity = make_development_identity()
        key.touch(mode=0o600)
        key.write_bytes(identity.key_pem)
        chain.write_bytes(identity.chain_pem)
        assert identity.root_pem is not None
        root.write_bytes(identity.root_pem)
        log.warning("made a DEVELOPMENT signing certificate for Content Credentials in %s", folder)
    return SigningIdentity(chain.read_bytes(), key.read_bytes(), root.read_bytes())


def make_development_identity() -> SigningIdentity:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(CA_NAME)
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        _builder(_name(SIGNER_NAME), ca_name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    root_pem = ca.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningIdentity(signer.public_bytes(serialization.Encoding.PEM) + root_pem, key_pem, root_pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "imagebot development"),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
