"""FAIR Signposting (https://signposting.org/FAIR/): the typed links of a dataset's landing
page, its metadata records and its files, and the linkset that gathers them.

Level 1 is a ``Link`` header (and ``<link>`` elements in the page) on each resource: the
landing page names what to cite it as, its authors, its metadata records (every export
registered with ``describedby``), its files, its licence and its types; each metadata
record says whom it ``describes``, each file which ``collection`` it belongs to. Level 2
is one linkset (RFC 9264) at ``/datasets/<id>/linkset`` (``application/linkset``) and
``/datasets/<id>/linkset.json`` (``application/linkset+json``) holding all of these, each
under the anchor it is about, announced by the landing page's ``linkset`` links.
"""

import json
from urllib.parse import quote

from django.urls import reverse

from repository.discovery.public import exports
from repository.discovery.public.facts import RecordFacts

# (target, rel, media type) of one Signposting link.
Link = tuple[str, str, str]

LINKSET = "application/linkset"
LINKSET_JSON = "application/linkset+json"
HTML = "text/html"

# Everything RFC 3986 allows in a URI except what ends a header link: a target is
# percent-encoded to these, so no stored value can leave its <…> (or add a header line).
_LINK_TARGET_SAFE = "!#$%&()*+,-./:;=?@[]_~"


def link_target(url: str) -> str:
    """``url`` as it can stand between ``<`` and ``>`` in a ``Link`` header."""
    return quote(url, safe=_LINK_TARGET_SAFE)


def _link_values(links, anchor: str = "") -> list[str]:
    return [
        f'<{link_target(target)}>; rel="{rel}"'
        + (f'; type="{media}"' if media else "")
        + (f'; anchor="{link_target(anchor)}"' if anchor else "")
        for target, rel, media in links
    ]


def link_header(links) -> str:
    return ", ".join(_link_values(links))


def landing_url(request, record_id: int) -> str:
    return request.build_absolute_uri(reverse("dataset-landing", args=[record_id]))


def export_url(request, record_id: int, fmt: str) -> str:
    return request.build_absolute_uri(reverse("dataset-export", args=[record_id, fmt]))


def linkset_urls(request, record_id: int) -> list[Link]:
    """The landing page's level 2 links: its linkset in both serialisations."""
    return [
        (request.build_absolute_uri(reverse(name, args=[record_id])), "linkset", media)
        for name, media in (("dataset-linkset", LINKSET), ("dataset-linkset-json", LINKSET_JSON))
    ]


def cite_as(facts: RecordFacts) -> Link:
    """What to cite the resource ``facts`` describes as: ``https://doi.org/<DOI>`` once it
    has a findable DOI (a live record its concept DOI, a version its own), else its page:
    a local identifier resolves nowhere else. Every ``cite-as`` link is this one — the
    landing page's and a version page's ``Link`` header and ``<link>``, the linkset's, and
    each metadata record's."""
    return (facts.cite_as, "cite-as", "")


def landing_links(request, facts: RecordFacts) -> list[Link]:
    """Level 1 of the landing page: (target, rel, media type)."""
    links = [cite_as(facts)]
    links += [(person.uri, "author", "") for person in facts.creators if person.uri]
    links += [
        (export_url(request, facts.pk, entry.key), "describedby", entry.media_type)
        for entry in exports.described_by(facts)
    ]
    links += [(f.url, "item", f.media_type) for f in facts.files]
    if facts.licence and facts.licence.uri:
        links.append((facts.licence.uri, "license", ""))
    links += [
        ("https://schema.org/Dataset", "type", ""),
        ("https://schema.org/AboutPage", "type", ""),
    ]
    return links


def describes(request, record_id: int) -> list[Link]:
    """Level 1 of a metadata record: the landing page it describes."""
    return [(landing_url(request, record_id), "describes", HTML)]


def collection(request, record_id: int) -> list[Link]:
    """Level 1 of a file: the landing page of the dataset it belongs to."""
    return [(landing_url(request, record_id), "collection", HTML)]


def linkset(request, facts: RecordFacts) -> list[tuple[str, list[Link]]]:
    """Level 2: (anchor, links) for the landing page, each metadata record and each file."""
    contexts = [(facts.landing_url, landing_links(request, facts))]
    contexts += [
        (export_url(request, facts.pk, entry.key), describes(request, facts.pk))
        for entry in exports.described_by(facts)
    ]
    contexts += [(f.url, collection(request, facts.pk)) for f in facts.files]
    return contexts


def linkset_text(contexts: list[tuple[str, list[Link]]]) -> str:
    """``application/linkset`` (RFC 9264, section 4.1): one link per line, anchored."""
    values = [value for anchor, links in contexts for value in _link_values(links, anchor)]
    return ",\n".join(values) + "\n"


def linkset_json(contexts: list[tuple[str, list[Link]]]) -> str:
    """``application/linkset+json`` (RFC 9264, section 4.2)."""
    document = []
    for anchor, links in contexts:
        context: dict = {"anchor": link_target(anchor)}
        for target, rel, media in links:
            target_object = {"href": link_target(target)} | ({"type": media} if media else {})
            context.setdefault(rel, []).append(target_object)
        document.append(context)
    return json.dumps({"linkset": document}, ensure_ascii=False, indent=2)
