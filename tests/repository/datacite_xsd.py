"""Validate DataCite XML against the kernel XSDs shipped in
``repository/discovery/public/schemas/datacite/`` (4.5 and 4.6), offline: every include and
import there is relative, and the parser may not reach the network."""

import functools
from pathlib import Path

from lxml import etree

SCHEMAS = (
    Path(__file__).resolve().parents[2] / "repository" / "discovery" / "public" / "schemas"
) / "datacite"
KERNELS = ("4.5", "4.6")


class _NoNetwork(etree.Resolver):
    """Refuse any schema location that is not a local file."""

    def resolve(self, url, pubid, context):
        if url and "://" in url and not url.startswith("file:"):
            raise AssertionError(f"the DataCite schema asked for {url}")
        return None


@functools.cache
def kernel(version: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_NoNetwork())
    path = SCHEMAS / f"kernel-{version}" / "metadata.xsd"
    return etree.XMLSchema(etree.parse(str(path), parser))


def assert_valid_datacite_xml(xml: str | bytes) -> None:
    """``xml`` is a valid DataCite resource under every kernel in :data:`KERNELS`."""
    document = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    for version in KERNELS:
        schema = kernel(version)
        assert schema.validate(document), f"kernel-{version}: {schema.error_log}"
