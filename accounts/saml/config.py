"""Kura's SAML service provider configuration, built from settings (``KURA_SAML_*``).

djangosaml2 asks :func:`sp_config` (``SAML_CONFIG_LOADER``) for pysaml2's ``SPConfig`` on
every SAML request. Building it loads the federation's metadata — GakuNin's aggregate is
megabytes, and checking its signature runs ``xmlsec1`` — so the loaded configuration is
kept in the process and loaded again after ``KURA_SAML_METADATA_REFRESH_SECONDS``; a
reload that fails keeps the last good metadata (and is tried again a minute later), and
with no good metadata at all the SAML pages answer 503 (:class:`SamlUnavailable`).

Federation metadata must be signed, and the signature must verify against the
federation's certificate (``KURA_SAML_METADATA_CERT``): unsigned metadata, metadata signed
by another key, and metadata changed after signing are all refused (pysaml2's own loaders
accept unsigned metadata even when given a certificate, hence :class:`FederationMetadata`).
"""

import logging
import threading
import time
from urllib.parse import urljoin

from defusedxml.ElementTree import fromstring as xml_fromstring
from django.conf import settings
from django.urls import reverse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import SPConfig
from saml2.extension.idpdisc import BINDING_DISCO
from saml2.mdstore import InMemoryMetaData, MetadataStore, SourceNotFound
from saml2.saml import NAMEID_FORMAT_TRANSIENT
from saml2.sigver import SignatureError

from .attributes import OPTIONAL_ATTRIBUTES, REQUIRED_ATTRIBUTES, attribute_converters

log = logging.getLogger("kura.security")

DSIG = "{http://www.w3.org/2000/09/xmldsig#}"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
# A failed reload is tried again after this many seconds, not on every request.
RETRY_SECONDS = 60


class SamlUnavailable(Exception):
    """GakuNin sign-in is switched on but cannot work now (no valid federation metadata)."""


class FederationMetadata(InMemoryMetaData):
    """Federation metadata from a URL or a file, accepted only with a valid signature.

    The root element (``EntitiesDescriptor``, or a lone ``EntityDescriptor``) must carry
    the signature, made by the key of ``cert`` over the whole root (its ``Reference``
    points at the root's ``ID``), and must be the first signature in the document: a
    signed element wrapped in an unsigned one is refused.
    """

    def __init__(self, attrc, source: str, *, cert: str, security, http, **kwargs):
        super().__init__(attrc, security=security, **kwargs)
        self.source = source
        self.cert = cert
        self.http = http

    def _content(self) -> bytes:
        if self.source.startswith(("https://", "http://")):
            response = self.http.send(self.source)
            if response.status_code != 200:
                raise SourceNotFound(self.source)
            return response.content
        with open(self.source, "rb") as fp:
            return fp.read()

    def load(self, *args, **kwargs) -> bool:
        text = self._content()
        root = xml_fromstring(text)
        root_id = root.get("ID")
        signature = root.find(f"{DSIG}Signature")
        first = next(root.iter(f"{DSIG}Signature"), None)
        if signature is None or first is not signature or not root_id:
            raise SignatureError(f"federation metadata {self.source} is not signed at its root")
        reference = signature.find(f"{DSIG}SignedInfo/{DSIG}Reference")
        if reference is None or reference.get("URI") != f"#{root_id}":
            raise SignatureError(f"the signature of {self.source} does not cover its root")
        node_name = f"{MD}:{root.tag.rpartition('}')[2]}"
        try:
            self.security.verify_signature(text, cert_file=self.cert, node_name=node_name)
        except SignatureError as exc:
            raise SignatureError(f"federation metadata {self.source}: bad signature") from exc
        self.parse(text)
        if not self.entity:
            raise SourceNotFound(f"federation metadata {self.source} holds no entities")
        return True


def absolute(url_name: str) -> str:
    return urljoin(settings.KURA_BASE_URL, reverse(url_name))


def sp_entity_id() -> str:
    return settings.KURA_SAML_SP_ENTITY_ID or absolute("saml2_metadata")


def sp_config_dict() -> dict:
    """pysaml2's SP configuration, without the federation metadata."""
    keypair = {
        "key_file": settings.KURA_SAML_SP_KEY_FILE,
        "cert_file": settings.KURA_SAML_SP_CERT_FILE,
    }
    contacts = []
    if settings.KURA_SAML_CONTACT_EMAIL:
        for contact_type in ("technical", "administrative", "support"):
            contacts.append(
                {
                    "contact_type": contact_type,
                    "given_name": settings.KURA_SAML_CONTACT_NAME,
                    "email_address": [f"mailto:{settings.KURA_SAML_CONTACT_EMAIL}"],
                }
            )
    return {
        "entityid": sp_entity_id(),
        "xmlsec_binary": settings.KURA_SAML_XMLSEC_BINARY,
        **keypair,
        # Shibboleth IdPs (GakuNin's) encrypt assertions to the SP's certificate.
        "encryption_keypairs": [keypair],
        "allow_unknown_attributes": True,
        "accepted_time_diff": settings.KURA_SAML_CLOCK_SKEW_SECONDS,
        "http_client_timeout": settings.KURA_SAML_METADATA_TIMEOUT,
        "service": {
            "sp": {
                "name": settings.KURA_SAML_SP_NAME,
                "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                "endpoints": {
                    "assertion_consumer_service": [(absolute("saml2_acs"), BINDING_HTTP_POST)],
                    "single_logout_service": [
                        (absolute("saml2_ls"), BINDING_HTTP_REDIRECT),
                        (absolute("saml2_ls_post"), BINDING_HTTP_POST),
                    ],
                    # Where a discovery service (GakuNin's DS) sends the browser back.
                    "discovery_response": [(absolute("saml2_login"), BINDING_DISCO)],
                },
                "required_attributes": REQUIRED_ATTRIBUTES,
                "optional_attributes": OPTIONAL_ATTRIBUTES,
                # Shibboleth signs the assertion (not the response) by default.
                "want_assertions_signed": True,
                "want_response_signed": False,
                "want_assertions_or_response_signed": True,
                # Only answers to Kura's own requests: a response must name an outstanding
                # AuthnRequest of this browser's session (no IdP-initiated sign-in).
                "allow_unsolicited": False,
                "authn_requests_signed": False,
                "logout_requests_signed": True,
            }
        },
        "organization": {
            "name": [(settings.KURA_SAML_SP_NAME, "en")],
            "display_name": [(settings.KURA_SAML_SP_NAME, "en")],
            "url": [(settings.KURA_BASE_URL, "en")],
        },
        "contact_person": contacts,
    }


def _load(with_federation: bool) -> SPConfig:
    conf = SPConfig()
    conf.load(sp_config_dict())
    converters = attribute_converters()
    conf.attribute_converters[:] = converters  # the metadata store holds the same list
    if with_federation:
        source = settings.KURA_SAML_METADATA_URL or settings.KURA_SAML_METADATA_FILE
        if not source or not settings.KURA_SAML_METADATA_CERT:
            raise SamlUnavailable(
                "KURA_SAML_ENABLED needs KURA_SAML_METADATA_URL or KURA_SAML_METADATA_FILE "
                "and KURA_SAML_METADATA_CERT."
            )
        store = MetadataStore(
            converters, conf, http_client_timeout=settings.KURA_SAML_METADATA_TIMEOUT
        )
        federation = FederationMetadata(
            converters,
            source,
            cert=settings.KURA_SAML_METADATA_CERT,
            security=store.security,
            http=store.http,
        )
        federation.load()
        store.metadata[source] = federation
        conf.metadata = store
    return conf


def _settings_key() -> tuple:
    return tuple(
        getattr(settings, name)
        for name in sorted(dir(settings))
        if name.startswith("KURA_SAML_") or name == "KURA_BASE_URL"
    )


_lock = threading.Lock()
_loaded: dict = {"key": None, "config": None, "next_load": 0.0}


def sp_config(request=None) -> SPConfig:
    """The SP configuration with the federation's metadata (djangosaml2's config loader)."""
    key = _settings_key()
    with _lock:
        current = _loaded["config"] if _loaded["key"] == key else None
        if current is not None and time.monotonic() < _loaded["next_load"]:
            return current
        try:
            config = _load(with_federation=True)
        except Exception as exc:  # noqa: BLE001 - any failure to load leaves the last good one
            log.error("SAML federation metadata not loaded: %s", exc)
            if current is None:
                raise SamlUnavailable(str(exc)) from exc
            _loaded["next_load"] = time.monotonic() + RETRY_SECONDS
            return current
        _loaded.update(
            key=key,
            config=config,
            next_load=time.monotonic() + settings.KURA_SAML_METADATA_REFRESH_SECONDS,
        )
        return config


def sp_config_without_federation(request=None) -> SPConfig:
    """The SP configuration alone: enough to serve Kura's own metadata."""
    return _load(with_federation=False)
