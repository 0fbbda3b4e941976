"""The SAML attributes Kura reads, by the names pysaml2 gives them.

pysaml2's own maps know the eduPerson and LDAP attributes (``eduPersonPrincipalName``,
``mail``, ``displayName``, ``o``, ``eduPersonScopedAffiliation``); GakuNin's Japanese ones
(``jaDisplayName``, ``jao``, under OID 1.3.6.1.4.1.32264.1.1) are added here to the map of
the ``urn:oasis:names:tc:SAML:2.0:attrname-format:uri`` format GakuNin IdPs release in.
"""

from saml2.attribute_converter import AttributeConverter, ac_factory
from saml2.attributemaps.saml_uri import MAP as SAML_URI_MAP
from saml2.saml import NAME_FORMAT_URI

GAKUNIN_OID = "urn:oid:1.3.6.1.4.1.32264.1.1."
GAKUNIN_ATTRIBUTES = {
    f"{GAKUNIN_OID}1": "jasn",
    f"{GAKUNIN_OID}2": "jaGivenName",
    f"{GAKUNIN_OID}3": "jaDisplayName",
    f"{GAKUNIN_OID}4": "jao",
    f"{GAKUNIN_OID}5": "jaou",
}

EPPN = "eduPersonPrincipalName"
# What Kura asks IdPs to release (its SP metadata), the required one first.
REQUIRED_ATTRIBUTES = [EPPN]
OPTIONAL_ATTRIBUTES = [
    "mail",
    "displayName",
    "jaDisplayName",
    "eduPersonScopedAffiliation",
    "o",  # organizationName
    "jao",
]


def attribute_converters() -> list[AttributeConverter]:
    """pysaml2's converters, with the URI-format one knowing GakuNin's attributes too."""
    uri_map = {
        "identifier": NAME_FORMAT_URI,
        "fro": {**SAML_URI_MAP["fro"], **GAKUNIN_ATTRIBUTES},
        "to": {**SAML_URI_MAP["to"], **{v: k for k, v in GAKUNIN_ATTRIBUTES.items()}},
    }
    uri = AttributeConverter(NAME_FORMAT_URI)
    uri.from_dict(uri_map)
    return [uri, *(ac for ac in ac_factory() if ac.name_format != NAME_FORMAT_URI)]
