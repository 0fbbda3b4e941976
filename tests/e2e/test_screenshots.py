"""Browser-test screenshots land under var/screenshots/ (git-ignored), never in the working
directory or elsewhere in the checkout (a folder ``1/`` of them was once committed)."""

import shutil
import subprocess
import uuid

import pytest

from tests.e2e.screenshots import DEFAULT_FOLDER, ROOT, Screenshots, screenshot_folder


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off"])
def test_screenshots_are_off_unless_asked_for(value):
    assert screenshot_folder(value) is None


@pytest.mark.parametrize(
    ("value", "folder"),
    [
        ("1", DEFAULT_FOLDER),  # the value that once made a folder "1/" at the root
        ("true", DEFAULT_FOLDER),
        ("review", DEFAULT_FOLDER / "review"),
        ("review/ja", DEFAULT_FOLDER / "review" / "ja"),
        (str(ROOT / "var" / "elsewhere"), ROOT / "var" / "elsewhere"),
    ],
)
def test_a_name_is_a_folder_under_var_screenshots(value, folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the working directory plays no part

    assert screenshot_folder(value) == folder


def test_an_absolute_folder_outside_the_checkout_is_used_as_given(tmp_path):
    assert screenshot_folder(str(tmp_path / "shots")) == tmp_path / "shots"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("../../screenshots", "leaves var/screenshots/"),
        ("review/../../..", "leaves var/screenshots/"),
        (str(ROOT), "inside the checkout but not under var/"),
        (str(ROOT / "1"), "inside the checkout but not under var/"),
        (str(ROOT / "tests" / "shots"), "inside the checkout but not under var/"),
    ],
)
def test_a_folder_in_the_tracked_tree_is_refused(value, message):
    with pytest.raises(ValueError, match=message):
        screenshot_folder(value)


def test_a_screenshot_name_cannot_leave_its_folder(tmp_path):
    with pytest.raises(ValueError, match="plain file name"):
        Screenshots(tmp_path).take(None, "../escape")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_real_screenshot_lands_under_the_ignored_folder_only(page, tmp_path, monkeypatch):
    name = f"selftest-{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)
    root_before = set(ROOT.iterdir())
    screenshots = Screenshots(screenshot_folder(name))
    try:
        page.goto("/")
        path = screenshots.take(page, "home", full_page=True)

        assert path == DEFAULT_FOLDER / name / "home.png"
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", "--no-index", str(path)], cwd=ROOT, check=False
        )
        assert ignored.returncode == 0, f"git would pick up {path}"
        assert list(tmp_path.iterdir()) == []  # nothing in the working directory
        assert set(ROOT.iterdir()) == root_before  # nothing new at the repository root
    finally:
        shutil.rmtree(DEFAULT_FOLDER / name, ignore_errors=True)
