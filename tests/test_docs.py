"""The project's own documentation stays true to the code and to itself.

* Nothing in the project cites a document outside it: the map and the metadata reference
  are ``docs/architecture.md`` and ``docs/metadata.md``, and every citation points there.
* Every relative link in ``docs/*.md`` and the README leads to a file in the checkout (and,
  for a link into a Markdown file with ``#anchor``, to one of its headings).
* The URL map in ``docs/architecture.md`` and Django's URL resolver agree both ways: every
  path and name in the map resolves, and every route Kura serves is in the map.
"""

import re
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ARCHITECTURE = DOCS / "architecture.md"

# Folders that are not the project's own text: environments, caches, generated or
# third-party files.
SKIPPED_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "var",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
    "build",
    "dist",
    "staticfiles",
}
SKIPPED_PATHS = {ROOT / "static" / "vendor"}
SCANNED_SUFFIXES = {".py", ".md", ".html", ".js", ".toml", ".cfg", ".sh"}
SCRIPT_DIRS = {ROOT / "bin", ROOT / ".ci"}  # every file there, whatever its name

# A path into the sibling checkout's documents, or the two documents by their old names
# (the project's own are docs/architecture.md and docs/metadata.md, in lower case). This
# file names the patterns, so it is not scanned itself.
OUTSIDE_CITATIONS = re.compile(r"\.\./shared|\bshared/docs/|\b(?:ARCHITECTURE|METADATA)\.md\b")
THIS_FILE = Path(__file__).resolve()

MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
BACKTICKED = re.compile(r"`([^`]+)`")


@pytest.fixture(scope="module", autouse=True)
def s3_server():
    """These tests read files and the URL configuration only: no S3 server (this overrides
    the session fixture of ``tests/conftest.py`` for this module)."""
    return None


def _project_files():
    def walk(folder: Path):
        for path in sorted(folder.iterdir()):
            if path.is_dir():
                if (
                    path.name in SKIPPED_DIRS
                    or path.name.endswith(".egg-info")
                    or path in SKIPPED_PATHS
                ):
                    continue
                yield from walk(path)
            elif path.is_file():
                yield path

    for path in walk(ROOT):
        if path == THIS_FILE:
            continue
        if path.suffix in SCANNED_SUFFIXES or any(d in path.parents for d in SCRIPT_DIRS):
            yield path


def test_the_scan_sees_the_project():
    """The scan below is not vacuous: it reads the apps, the docs, the scripts and CI."""
    scanned = {path.relative_to(ROOT).as_posix() for path in _project_files()}
    for expected in (
        "README.md",
        "docs/architecture.md",
        "docs/metadata.md",
        "repository/access.py",
        "static/js/uploader.js",
        "pyproject.toml",
        "bin/run",
        "bin/test",
        ".ci/run",
    ):
        assert expected in scanned


def test_nothing_cites_documents_outside_the_project():
    found = []
    for path in _project_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE_CITATIONS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "cite docs/architecture.md or docs/metadata.md instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "See ../shared/docs/STYLE.md.",
        "(shared/docs/METADATA.md)",
        "Tier table (``ARCHITECTURE.md``):",
        'The rules (METADATA.md, "CSV columns").',
    ],
)
def test_an_outside_citation_would_be_found(line):
    assert OUTSIDE_CITATIONS.search(line)


def test_a_citation_of_the_projects_docs_is_not_outside():
    assert not OUTSIDE_CITATIONS.search('(docs/architecture.md, "Tier changes")')
    assert not OUTSIDE_CITATIONS.search("see docs/metadata.md")


# --- Links -----------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as ``-``."""
    text = BACKTICKED.sub(r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(markdown: Path) -> set[str]:
    anchors = set()
    in_code = False
    for line in markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := HEADING.match(line)):
            anchors.add(github_anchor(match.group(1)))
    return anchors


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _links(markdown: Path):
    in_code = False
    for number, line in enumerate(markdown.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in MARKDOWN_LINK.findall(line):
            yield number, target


def test_the_docs_exist():
    assert ARCHITECTURE.is_file()
    assert (DOCS / "metadata.md").is_file()


@pytest.mark.parametrize("document", _documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files_in_the_project(document):
    broken = []
    for number, target in _links(document):
        if EXTERNAL.match(target):
            continue
        path_part, _hash, anchor = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        where = f"{document.relative_to(ROOT)}:{number}: {target}"
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{where} (outside the project)")
        elif not resolved.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{where} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_link_check_sees_links():
    """The check above is not vacuous: the README and the map link to each other."""
    readme_targets = [target for _n, target in _links(ROOT / "README.md")]
    assert "docs/architecture.md" in readme_targets
    assert any(t.startswith("../README.md") for _n, t in _links(ARCHITECTURE))


def test_github_anchor():
    assert github_anchor("Caches and dashboards") == "caches-and-dashboards"
    assert github_anchor("Dashboards: tallies") == "dashboards-tallies"
    assert github_anchor("Requests, decisions, audit and notification") == (
        "requests-decisions-audit-and-notification"
    )
    assert github_anchor("schema.org / JSON-LD") == "schemaorg--json-ld"


# --- The URL map -----------------------------------------------------------------------------


def documented_routes() -> dict[str, str | None]:
    """{path: name or None} from the table under "## URL map" in docs/architecture.md."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("\n## URL map\n", 1)[1].split("\n## ", 1)[0]
    routes: dict[str, str | None] = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        paths = BACKTICKED.findall(cells[0])
        if len(cells) < 3 or not paths or not paths[0].startswith("/"):
            continue  # the header and separator rows
        assert len(paths) == 1, f"one path per row: {line}"
        assert paths[0] not in routes, f"listed twice: {paths[0]}"
        names = BACKTICKED.findall(cells[1])
        routes[paths[0]] = names[0] if names else None
    return routes


def _pattern_text(pattern) -> str:
    """A route as written in urls.py; a regex route without its anchors."""
    return str(pattern).removeprefix("^").removesuffix("$")


def _served(patterns, prefix: str = "", namespace: str = ""):
    for entry in patterns:
        text = prefix + _pattern_text(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _served(entry.url_patterns, text, inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else None
            yield "/" + text, name, entry.callback


def all_routes() -> dict[str, set[str | None]]:
    """{path: its names} of every route Django resolves."""
    routes: dict[str, set[str | None]] = {}
    for path, name, _callback in _served(get_resolver().url_patterns):
        routes.setdefault(path, set()).add(name)
    return routes


def served_routes() -> dict[str, str | None]:
    """{path: name or None} of every route Kura serves: all that Django resolves but the
    admin's pages (its index aside), Django's static serving (``DEBUG`` only) and the i18n
    internals."""
    routes = {}
    for path, name, callback in _served(get_resolver().url_patterns):
        if path.startswith(("/admin/", "/i18n/")) and path != "/admin/":
            continue
        if callback.__module__ == "django.views.static":
            continue
        assert path not in routes, f"two routes for {path}"
        routes[path] = name
    return routes


def test_the_url_map_is_read():
    documented = documented_routes()
    assert documented["/datasets/<int:record_id>/"] == "dataset-landing"
    assert documented["/api/"] is None
    assert len(documented) > 60


def test_every_documented_route_is_served():
    served = all_routes()
    wrong = [
        f"{path} ({name or 'no name'})"
        for path, name in documented_routes().items()
        if path not in served or name not in served[path]
    ]
    assert not wrong, "in the URL map of docs/architecture.md but not served:\n" + "\n".join(wrong)


def test_every_served_route_is_documented():
    documented = documented_routes()
    missing = [
        f"| `{path}` | `{name}` | … |" if name else f"| `{path}` | – | … |"
        for path, name in served_routes().items()
        if path not in documented or documented[path] != name
    ]
    assert not missing, "add to the URL map of docs/architecture.md:\n" + "\n".join(missing)
