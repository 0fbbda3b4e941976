"""DOI providers: who registers the DOIs of published versions and of the records' concepts.

Every provider speaks :class:`DoiProvider`: ``draft`` reserves a DOI, ``publish`` makes it
findable at a URL, ``update`` pushes new metadata or a new URL to a findable DOI, ``hide``
makes it registered but not findable (withdrawal, with the tombstone URL). The metadata is
DataCite JSON (:func:`repository.discovery.public.datacite.datacite_json`); a provider
sends it as its registration agency wants it. :class:`DataCiteProvider` sends DataCite's
XML kernel, base64 in ``attributes.xml``, through ``datacite.DataCiteRESTClient``;
:class:`LocalProvider` registers nothing. A JaLC provider would be one more class.

A call that fails raises :class:`DoiError` with what the provider answered; the caller
(:mod:`repository.publishing.sync`) records it and tries again later.
"""

import base64
from typing import Protocol

from datacite import DataCiteRESTClient
from datacite.errors import DataCiteError
from django.conf import settings
from requests import RequestException

from repository.discovery.public.datacite import datacite_xml


class DoiError(Exception):
    """The provider refused or could not be reached; the message says what it answered."""


class DoiProvider(Protocol):
    registers: bool  # False: no DOIs at all (versions keep local identifiers)

    def doi_for(self, suffix: str) -> str: ...

    def draft(self, doi: str, metadata: dict) -> None: ...

    def publish(self, doi: str, metadata: dict, url: str) -> None: ...

    def update(self, doi: str, metadata: dict, url: str) -> None: ...

    def hide(self, doi: str, metadata: dict, url: str) -> None: ...


class LocalProvider:
    """A deployment without DOI credentials: every version is identified by its URL."""

    registers = False

    def doi_for(self, suffix: str) -> str:
        return ""

    def draft(self, doi: str, metadata: dict) -> None:
        return None

    def publish(self, doi: str, metadata: dict, url: str) -> None:
        return None

    def update(self, doi: str, metadata: dict, url: str) -> None:
        return None

    def hide(self, doi: str, metadata: dict, url: str) -> None:
        return None


def _xml_attribute(doi: str, metadata: dict) -> str:
    """The DataCite XML kernel of ``metadata`` for ``doi``, base64 (``attributes.xml``)."""
    xml = datacite_xml({**metadata, "doi": doi})
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


class DataCiteProvider:
    """DataCite's REST API (``KURA_DATACITE_*``)."""

    registers = True

    def __init__(self, *, prefix: str, username: str, password: str, url: str, timeout=30.0):
        self.prefix = prefix
        self.client = DataCiteRESTClient(
            username=username, password=password, prefix=prefix, url=url, timeout=timeout
        )

    def doi_for(self, suffix: str) -> str:
        return f"{self.prefix}/{suffix}".lower()

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except DataCiteError as exc:
            raise DoiError(f"DataCite: {type(exc).__name__}: {exc}"[:2000]) from exc
        except (RequestException, OSError, ValueError) as exc:
            raise DoiError(f"DataCite unreachable: {exc}"[:2000]) from exc

    def _state(self, doi: str) -> str | None:
        """The DOI's state at DataCite, or ``None`` if DataCite does not know it."""
        try:
            return self.client.get_metadata(doi).get("state")
        except DataCiteError:
            return None
        except (RequestException, OSError, ValueError) as exc:
            raise DoiError(f"DataCite unreachable: {exc}"[:2000]) from exc

    def draft(self, doi: str, metadata: dict) -> None:
        # Kura chooses the suffix, so a draft made by a call whose answer was lost is found
        # here rather than made twice.
        if self._state(doi) is not None:
            return
        self._call(self.client.draft_doi, {"xml": _xml_attribute(doi, metadata)}, doi)

    def _put(self, doi: str, metadata: dict, url: str, event: str | None) -> None:
        attributes = {"doi": doi, "url": url, "xml": _xml_attribute(doi, metadata)}
        if event:
            attributes["event"] = event
        self._call(self.client.put_doi, doi, {"type": "dois", "attributes": attributes})

    def publish(self, doi: str, metadata: dict, url: str) -> None:
        self._put(doi, metadata, url, "publish")

    def update(self, doi: str, metadata: dict, url: str) -> None:
        self._put(doi, metadata, url, None)

    def hide(self, doi: str, metadata: dict, url: str) -> None:
        # A draft is registered rather than hidden: DataCite hides only what was findable.
        event = "register" if self._state(doi) == "draft" else "hide"
        self._put(doi, metadata, url, event)


def provider() -> DoiProvider:
    """The provider the settings name (``KURA_DOI_PROVIDER``)."""
    if settings.KURA_DOI_PROVIDER == "datacite":
        return DataCiteProvider(
            prefix=settings.KURA_DATACITE_PREFIX,
            username=settings.KURA_DATACITE_USERNAME,
            password=settings.KURA_DATACITE_PASSWORD,
            url=settings.KURA_DATACITE_URL,
            timeout=settings.KURA_DATACITE_TIMEOUT,
        )
    return LocalProvider()
