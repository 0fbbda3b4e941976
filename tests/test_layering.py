"""Apps import downward only: ``accounts`` <- ``dmp`` <- ``repository`` <- ``config``
(``config`` wires the apps together and imports anything; an app never imports one above
it, nor ``config``). See docs/architecture.md, "Layering".

The imports that run the wrong way today are listed in :data:`DEBTS`, one (file, module)
each, read from the code with ``ast`` (function-level imports included). The test fails on
any import against the order that is not listed, and on a listed one that is gone, so the
list only shrinks: paying a debt means deleting its line.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("accounts", "dmp", "repository", "config")

DEBTS = {
    ("accounts/authentication.py", "config.http"),
    ("accounts/models.py", "dmp.vocabularies"),
    ("dmp/admin.py", "repository.models"),
    ("dmp/api/views.py", "config.api"),
    ("dmp/api/views.py", "config.http"),
    ("dmp/api/views.py", "repository.access"),
    ("dmp/api/views.py", "repository.api.filters"),
    ("dmp/context_processors.py", "repository.access"),
    ("dmp/exports.py", "config.spreadsheet"),
    ("dmp/records_import.py", "repository.access"),
    ("dmp/records_import.py", "repository.models"),
    ("dmp/records_import.py", "repository.services"),
    ("dmp/selectors.py", "repository.access"),
    ("dmp/selectors.py", "repository.models"),
    ("dmp/services.py", "repository.access"),
    ("dmp/services.py", "repository.models"),
    ("dmp/services.py", "repository.services"),
    ("dmp/views.py", "config.http"),
    ("dmp/views.py", "repository.access"),
    ("dmp/views.py", "repository.views"),
    ("repository/api/requests.py", "config.api"),
    ("repository/api/requests.py", "config.http"),
    ("repository/api/upload_batch.py", "config.api"),
    ("repository/api/upload_batch.py", "config.http"),
    ("repository/api/views.py", "config.api"),
    ("repository/api/views.py", "config.http"),
    ("repository/audit.py", "config.spreadsheet"),
    ("repository/health.py", "config.celery"),
    ("repository/my_uploads/views.py", "config.http"),
    ("repository/oai/views.py", "config.db"),
    ("repository/public/bagit.py", "config.api"),
    ("repository/public/views.py", "config.db"),
    ("repository/review/views.py", "config.http"),
    ("repository/search/urls.py", "config.db"),
    ("repository/search/views.py", "config.db"),
    ("repository/stewardship/views.py", "config.http"),
    ("repository/upload_batch.py", "config.api"),
    ("repository/uploads.py", "config.api"),
    ("repository/views.py", "config.http"),
}


def _upward_imports(root: Path = ROOT) -> set[tuple[str, str]]:
    found = set()
    for app in ORDER:
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if "/migrations/" in relative:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in ORDER and ORDER.index(top) > ORDER.index(app):
                        found.add((relative, name))
    return found


def test_no_app_imports_one_above_it_beyond_the_listed_debts():
    found = _upward_imports()
    assert found - DEBTS == set(), "new imports against the layering (docs/architecture.md)"
    assert DEBTS - found == set(), "paid debts: delete their lines from DEBTS"


def test_the_check_sees_imports_hidden_in_functions(tmp_path):
    app = tmp_path / "accounts"
    app.mkdir()
    (app / "hidden.py").write_text("def f():\n    from repository import models\n")
    (app / "fine.py").write_text("import sys\nfrom . import hidden\n")
    assert _upward_imports(tmp_path) == {("accounts/hidden.py", "repository")}
