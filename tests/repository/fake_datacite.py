"""A local stand-in for DataCite's REST API, for the DOI tests (no test reaches the internet).

It speaks the JSON:API that ``datacite.DataCiteRESTClient`` speaks (``GET``, ``POST``,
``PUT`` and ``DELETE`` under ``/dois``, basic authentication), keeps every DOI with its
state, URL and metadata, and is as strict as DataCite where Kura could go wrong:

- every ``attributes.xml`` must be base64 of DataCite XML valid against the kernel XSD it
  names (``repository/discovery/public/schemas/datacite/kernel-4.x/``), whose identifier
  is the DOI it is sent for; JSON metadata attributes are refused (Kura sends XML);
- states: a new DOI is a draft (no event), ``findable`` (``publish``) or ``registered``
  (``register``); ``publish`` needs a URL and metadata; ``hide`` turns findable into
  registered and is refused on a draft; nothing goes back to draft; only drafts are
  deleted; a DOI already taken is refused (422), a prefix not the account's too.

``fail_next`` makes the next calls answer 503, as an outage would.
"""

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree

SCHEMAS = Path(__file__).resolve().parents[2] / "repository/discovery/public/schemas/datacite"
USERNAME, PASSWORD, PREFIX = "KURA.TEST", "secret", "10.99999"
_KERNEL = re.compile(r"kernel-(4\.\d+)/metadata\.xsd")
_METADATA_KEYS = {"titles", "creators", "publisher", "types", "publicationYear", "subjects"}
_schemas: dict[str, etree.XMLSchema] = {}


def _schema(version: str) -> etree.XMLSchema:
    if version not in _schemas:
        path = SCHEMAS / f"kernel-{version}" / "metadata.xsd"
        if not path.exists():
            raise ValueError(f"unknown kernel {version}")
        _schemas[version] = etree.XMLSchema(etree.parse(str(path)))
    return _schemas[version]


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def validated_xml(encoded: str, doi: str) -> str:
    """The XML of ``attributes.xml``, if valid for ``doi``; else :class:`Refused` (422)."""
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
        document = etree.fromstring(text.encode("utf-8"))  # noqa: S320 - our own test data
    except (ValueError, etree.XMLSyntaxError) as exc:
        raise Refused(422, f"xml is not base64 XML: {exc}") from exc
    location = document.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation", "")
    match = _KERNEL.search(location)
    if not match:
        raise Refused(422, "xml names no DataCite kernel")
    schema = _schema(match.group(1))
    if not schema.validate(document):
        raise Refused(422, f"xml invalid: {schema.error_log.last_error}")
    identifier = document.find("{http://datacite.org/schema/kernel-4}identifier")
    if identifier is None or (identifier.text or "").lower() != doi.lower():
        raise Refused(422, "xml identifier is not the DOI")
    return text


class FakeDataCite:
    def __init__(self):
        self.dois: dict[str, dict] = {}
        self.calls: list[tuple[str, str, str | None]] = []  # (method, doi, event)
        self.fail_next = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def state(self, doi: str) -> str | None:
        entry = self.dois.get(doi.lower())
        return entry["state"] if entry else None

    def url_of(self, doi: str) -> str | None:
        entry = self.dois.get(doi.lower())
        return entry["url"] if entry else None

    def xml_of(self, doi: str) -> str:
        return self.dois[doi.lower()]["xml"]

    # --- the API ------------------------------------------------------------------

    def _apply(self, method: str, doi: str | None, body: dict | None) -> tuple[int, dict | None]:
        if self.fail_next:
            self.fail_next -= 1
            raise Refused(503, "Service Unavailable")
        if method == "GET":
            entry = self.dois.get((doi or "").lower())
            if entry is None:
                raise Refused(404, "The resource you are looking for doesn't exist.")
            return 200, self._document(entry)
        if method == "DELETE":
            entry = self.dois.get((doi or "").lower())
            if entry is None:
                raise Refused(404, "not found")
            if entry["state"] != "draft":
                raise Refused(405, "Method not allowed: only drafts are deleted")
            del self.dois[doi.lower()]
            return 204, None
        data = (body or {}).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
            raise Refused(400, "a JSON:API document with data.attributes is needed")
        attributes = data["attributes"]
        if _METADATA_KEYS & attributes.keys():
            raise Refused(422, "this fake takes metadata as attributes.xml only")
        event = attributes.get("event")
        if method == "POST":
            doi = attributes.get("doi") or ""
            if not doi.lower().startswith(PREFIX + "/"):
                raise Refused(422, f"DOI {doi!r} is not under the prefix {PREFIX}")
            if doi.lower() in self.dois:
                raise Refused(422, "This DOI has already been taken")
            entry = {"doi": doi.lower(), "state": None, "url": None, "xml": None}
        else:
            entry = self.dois.get((doi or "").lower())
            if entry is None:
                raise Refused(404, "not found")
            if attributes.get("doi", entry["doi"]).lower() != entry["doi"]:
                raise Refused(422, "the DOI of the body is not the DOI of the path")
            entry = dict(entry)
        self.calls.append((method, entry["doi"], event))
        if "xml" in attributes:
            entry["xml"] = validated_xml(attributes["xml"], entry["doi"])
        if "url" in attributes:
            if not re.match(r"^https?://", attributes["url"] or ""):
                raise Refused(422, "url must be http(s)")
            entry["url"] = attributes["url"]
        entry["state"] = self._next_state(entry["state"], event, entry)
        self.dois[entry["doi"]] = entry
        return (201 if method == "POST" else 200), self._document(entry)

    @staticmethod
    def _next_state(state: str | None, event: str | None, entry: dict) -> str:
        if event is None:
            return state or "draft"
        if event not in ("publish", "register", "hide"):
            raise Refused(422, f"unknown event {event!r}")
        if event in ("publish", "register") and not (entry["url"] and entry["xml"]):
            raise Refused(422, f"{event} needs a url and metadata")
        if event == "publish":
            return "findable"
        if event == "register":
            if state not in (None, "draft", "registered"):
                raise Refused(422, f"cannot register a {state} DOI")
            return "registered"
        if state != "findable" and state != "registered":
            raise Refused(422, f"cannot hide a {state or 'new'} DOI")
        return "registered"

    @staticmethod
    def _document(entry: dict) -> dict:
        xml = base64.b64encode(entry["xml"].encode()).decode() if entry["xml"] else None
        attributes = {"doi": entry["doi"], "state": entry["state"], "url": entry["url"]}
        attributes["xml"] = xml
        return {"data": {"id": entry["doi"], "type": "dois", "attributes": attributes}}

    def _handler(self):
        fake = self
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, method: str):
                path = self.path.split("?", 1)[0]
                status, document = 404, {"errors": [{"title": "not found"}]}
                try:
                    if self.headers.get("Authorization") != expected:
                        raise Refused(401, "Bad credentials")
                    length = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(length) if length else b""
                    body = json.loads(raw) if raw else None
                    if method in ("POST", "PUT") and not (
                        self.headers.get("Content-Type", "").startswith("application/vnd.api+json")
                    ):
                        raise Refused(415, "application/vnd.api+json expected")
                    if path == "/dois" and method == "POST":
                        doi = None
                    elif path.startswith("/dois/") and method != "POST":
                        doi = path[len("/dois/") :]
                    else:
                        raise Refused(404, "not found")
                    with fake.lock:
                        status, document = fake._apply(method, doi, body)
                except Refused as exc:
                    status, document = exc.status, {"errors": [{"title": str(exc)}]}
                except ValueError as exc:
                    status, document = 400, {"errors": [{"title": str(exc)}]}
                payload = json.dumps(document).encode() if document is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.api+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PUT(self):
                self._serve("PUT")

            def do_DELETE(self):
                self._serve("DELETE")

        return Handler


@pytest.fixture(name="fake_datacite")
def fake_datacite_fixture(settings):
    """A fake DataCite on a free loopback port, with Kura's settings pointing at it."""
    fake = FakeDataCite().start()
    settings.KURA_DOI_PROVIDER = "datacite"
    settings.KURA_DATACITE_PREFIX = PREFIX
    settings.KURA_DATACITE_USERNAME = USERNAME
    settings.KURA_DATACITE_PASSWORD = PASSWORD
    settings.KURA_DATACITE_URL = fake.url
    settings.KURA_DATACITE_TIMEOUT = 5
    try:
        yield fake
    finally:
        fake.stop()
