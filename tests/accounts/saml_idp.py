"""A real SAML identity provider for the tests: pysaml2's own ``saml2.server.Server``.

Keys and certificates are made at run time (nothing committed): one for Kura's SP, one
per IdP, one for the federation, which signs the metadata aggregate naming the IdPs
(``federation_metadata``). :class:`TestIdP` answers an AuthnRequest with a signed
assertion the way a GakuNin Shibboleth IdP does (URI attribute names, signed assertion).
"""

import base64
import datetime
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import Config, IdPConfig
from saml2.metadata import entities_descriptor, entity_descriptor
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_TRANSIENT
from saml2.server import Server
from saml2.sigver import security_context
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from accounts.saml.attributes import attribute_converters

XMLSEC = "/usr/bin/xmlsec1"
PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


@dataclass(frozen=True)
class KeyPair:
    key_file: str
    cert_file: str


def make_keypair(folder: Path, name: str) -> KeyPair:
    """An RSA key and a self-signed certificate for it, as PEM files in ``folder``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyPair(str(key_file), str(cert_file))


def idp_config(
    entity_id: str,
    keys: KeyPair,
    *,
    sso_url: str,
    sp_metadata: str = "",
    name: str = "",
    name_ja: str = "",
    lifetime_minutes: int = 15,
    scopes: tuple[str, ...] = (),
) -> IdPConfig:
    names = [(name or entity_id, "en")] + ([(name_ja, "ja")] if name_ja else [])
    conf = {
        "entityid": entity_id,
        "xmlsec_binary": XMLSEC,
        "key_file": keys.key_file,
        "cert_file": keys.cert_file,
        "service": {
            "idp": {
                "name": name or entity_id,
                "endpoints": {
                    "single_sign_on_service": [
                        (sso_url, BINDING_HTTP_REDIRECT),
                        (sso_url, BINDING_HTTP_POST),
                    ],
                    "single_logout_service": [
                        (sso_url.replace("sso", "slo"), BINDING_HTTP_REDIRECT)
                    ],
                },
                "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                # The security domains this IdP may assert (shibmd:Scope in its metadata).
                "scope": list(scopes),
                "policy": {
                    "default": {
                        "lifetime": {"minutes": lifetime_minutes},
                        "attribute_restrictions": None,
                        "name_form": NAME_FORMAT_URI,
                    }
                },
            }
        },
        "organization": {"name": names, "display_name": names, "url": [(entity_id, "en")]},
    }
    if sp_metadata:
        conf["metadata"] = {"inline": [sp_metadata]}
    config = IdPConfig()
    config.load(conf)
    config.attribute_converters[:] = attribute_converters()
    return config


def federation_metadata(
    idp_configs: list[IdPConfig], federation: KeyPair, path: Path, valid_hours: int = 24
) -> Path:
    """The IdPs' metadata as one aggregate, signed with the federation's key."""
    signer = Config()
    signer.load(
        {
            "xmlsec_binary": XMLSEC,
            "key_file": federation.key_file,
            "cert_file": federation.cert_file,
        }
    )
    eds = [entity_descriptor(conf) for conf in idp_configs]
    _entities, xml = entities_descriptor(
        eds,
        valid_hours,
        "urn:test:federation",
        "fed-aggregate",
        True,
        security_context(signer),
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    path.write_text(xml)
    return path


class TestIdP:
    """One IdP of the test federation, answering Kura's AuthnRequests."""

    __test__ = False  # not a test class

    def __init__(
        self,
        entity_id: str,
        keys: KeyPair,
        sso_url: str,
        name: str = "",
        name_ja: str = "",
        scopes: tuple[str, ...] = (),
    ):
        self.entity_id = entity_id
        self.keys = keys
        self.sso_url = sso_url
        self.name = name
        self.metadata_config = idp_config(
            entity_id, keys, sso_url=sso_url, name=name, name_ja=name_ja, scopes=scopes
        )

    def server(
        self, sp_metadata: str, *, keys: KeyPair | None = None, lifetime_minutes: int = 15
    ) -> Server:
        conf = idp_config(
            self.entity_id,
            keys or self.keys,
            sso_url=self.sso_url,
            sp_metadata=sp_metadata,
            name=self.name,
            lifetime_minutes=lifetime_minutes,
        )
        return Server(config=conf)

    def answer(
        self,
        authn_redirect_url: str,
        sp_metadata: str,
        identity: dict,
        *,
        keys: KeyPair | None = None,
        lifetime_minutes: int = 15,
        encrypt: bool = False,
    ) -> tuple[str, str]:
        """The base64 SAMLResponse (and the RelayState) answering the AuthnRequest in
        ``authn_redirect_url`` (Kura's redirect to this IdP), for the person ``identity``."""
        query = parse_qs(urlsplit(authn_redirect_url).query)
        server = self.server(sp_metadata, keys=keys, lifetime_minutes=lifetime_minutes)
        request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        message = request.message
        kwargs = {}
        if encrypt:
            sp_cert = server.metadata.certs(message.issuer.text, "spsso", use="encryption")[0][1]
            kwargs = {
                "encrypt_assertion": True,
                "encrypt_cert_assertion": sp_cert,
            }
        response = server.create_authn_response(
            identity,
            in_response_to=message.id,
            destination=message.assertion_consumer_service_url,
            sp_entity_id=message.issuer.text,
            name_id_policy=message.name_id_policy,
            userid=identity.get("eduPersonPrincipalName", ["anonymous"])[0],
            authn={"class_ref": PASSWORD_PROTECTED, "authn_auth": self.entity_id},
            sign_assertion=True,
            sign_response=False,
            **kwargs,
        )
        encoded = base64.b64encode(str(response).encode()).decode()
        return encoded, query.get("RelayState", [""])[0]
