"""The main pages in Chromium, in Japanese and English: axe-core finds no serious or critical
violation, and on a phone (390 × 844) no page scrolls sideways and every Download button on
a landing page lies inside the screen.

axe-core is vendored under tests/e2e/vendor/ (only the suite injects it). With
KURA_SCREENSHOTS set, each page is kept as a screenshot (tests/e2e/screenshots.py) and its
axe counts are appended to ``axe-counts.tsv`` beside them, for reviewing by eye. The check
is itself checked: the violations it was brought in for, put back, fail it."""

import io
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import expect

from accounts.models import Project, User
from dmp.models import DmpRecord
from repository.models import DataObject, TierChangeRequest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-core-4.12.1" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")
PHONE = {"width": 390, "height": 844}
LANGUAGES = ("ja", "en")
FILES = "section[aria-labelledby=files]"  # the landing page's files


@dataclass(frozen=True)
class MainPage:
    name: str
    user: str | None  # a demo user, or None for a visitor


PAGES = [
    MainPage("home", None),
    MainPage("search", None),
    MainPage("landing", None),
    MainPage("upload", "researcher"),
    MainPage("object", "researcher"),
    MainPage("dashboard", "pm"),
    MainPage("dmp", "pm"),
    MainPage("review", "curator"),
    MainPage("audit", "pm"),
    MainPage("members", "pm"),
]
PAGE = {main_page.name: main_page for main_page in PAGES}


@pytest.fixture
def demo():
    call_command("kura_demo", stdout=io.StringIO())
    project = Project.objects.get(memberships__user__username="pm")
    landing = DmpRecord.objects.get(project=project, data_number="D-001")
    public = DataObject.objects.filter(record=landing, tier="public").order_by("pk").first()
    review = TierChangeRequest.objects.get(project=project, status="pending")
    return {
        "home": "/",
        "search": "/datasets/",
        "landing": f"/datasets/{landing.pk}/",
        "upload": f"/projects/{project.pk}/upload/",
        "object": f"/objects/{public.pk}/",
        "dashboard": f"/projects/{project.pk}/dashboard/",
        "dmp": f"/projects/{project.pk}/dmp/",
        "review": f"/review/{review.pk}/",
        "audit": f"/projects/{project.pk}/audit/",
        "members": f"/projects/{project.pk}/members/",
    }


def open_as(browser, live_server, *, user: str | None, language: str, viewport=None):
    """A browser context signed in as the demo ``user`` (a session made by Django's test
    client), reading ``language``."""
    context = browser.new_context(
        base_url=live_server.url, locale="ja-JP" if language == "ja" else "en-US",
        viewport=viewport or {"width": 1280, "height": 900},
    )  # fmt: skip
    context.set_default_timeout(15_000)
    cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    if user is not None:
        client = Client()
        client.force_login(User.objects.get(username=user))
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        cookies.append(
            {"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}
        )
    context.add_cookies(cookies)
    return context


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as it stands (injected past the page's CSP, once
    per page)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "targets": [" ".join(map(str, node["target"])) for node in v["nodes"]][:5],
        }
        for v in result
    ]


def visit(page, path: str, language: str) -> None:
    """Open ``path`` and check that it is the page itself that came, in ``language``: not a
    sign-in page or an error page reached by a redirect, which the checks would pass."""
    response = page.goto(path)
    assert response.status == 200, path
    assert urlsplit(page.url).path == path  # not redirected (to sign in, say)
    assert page.locator("html").get_attribute("lang") == language
    page.wait_for_load_state("networkidle")


def keep_counts(screenshots, name: str, violations: list[dict]) -> None:
    if not screenshots.enabled:
        return
    counts = dict.fromkeys(("critical", "serious", "moderate", "minor"), 0)
    for violation in violations:
        counts[violation["impact"]] = counts.get(violation["impact"], 0) + 1
    screenshots.folder.mkdir(parents=True, exist_ok=True)
    with open(screenshots.folder / "axe-counts.tsv", "a", encoding="utf-8") as out:
        ids = ",".join(sorted({v["id"] for v in violations}))
        out.write(f"{name}\t{json.dumps(counts)}\t{ids}\n")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("main_page", PAGES, ids=[p.name for p in PAGES])
def test_axe_finds_no_serious_or_critical_violation(
    browser, live_server, demo, screenshots, main_page, language
):
    context = open_as(browser, live_server, user=main_page.user, language=language)
    try:
        page = context.new_page()
        visit(page, demo[main_page.name], language)

        violations = axe_violations(page)

        name = f"desktop-{main_page.name}-{language}"
        screenshots.take(page, name, full_page=True)
        keep_counts(screenshots, name, violations)
        failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
        assert not failing, json.dumps(failing, indent=1, ensure_ascii=False)
    finally:
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_on_a_phone_no_main_page_scrolls_sideways_and_axe_finds_nothing_serious(
    browser, live_server, demo, screenshots, language
):
    too_wide = {}
    failing = {}
    for main_page in PAGES:
        context = open_as(
            browser, live_server, user=main_page.user, language=language, viewport=PHONE
        )
        try:
            page = context.new_page()
            visit(page, demo[main_page.name], language)
            name = f"phone-{main_page.name}-{language}"
            screenshots.take(page, name, full_page=True)
            # Tables scroll inside their boxes here: each such box must be reachable by keyboard.
            violations = axe_violations(page)
            keep_counts(screenshots, name, violations)
            serious = [v for v in violations if v["impact"] in FAILING_IMPACTS]
            if serious:
                failing[main_page.name] = serious

            width, screen = page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )

            assert screen == PHONE["width"]
            if width > screen:
                too_wide[main_page.name] = width
        finally:
            context.close()
    assert too_wide == {}  # page name: its width in CSS pixels
    assert not failing, json.dumps(failing, indent=1, ensure_ascii=False)


@dataclass(frozen=True)
class Regression:
    """A serious violation axe found before this check existed, and how to put it back."""

    page: MainPage
    viewport: dict | None
    undo_fix: str  # JavaScript returning how many elements it changed
    rule: str
    target: str  # a class the violating element has


REGRESSIONS = {
    # Uppy's own colour for its note: #939393 on its #fafafa box, 2.8:1.
    "upload-note-contrast": Regression(
        PAGE["upload"],
        None,
        "() => [...document.querySelectorAll('#uppy-dashboard .uppy-Dashboard-note')]"
        ".map(note => note.style.color = '#939393').length",
        "color-contrast",
        "uppy-Dashboard-note",
    ),
    # The audit trail's table scrolling in its box on a phone, the box out of the tab order.
    "audit-table-not-focusable": Regression(
        PAGE["audit"],
        PHONE,
        "() => [...document.querySelectorAll('.table-wrap[tabindex]')]"
        ".map(box => box.removeAttribute('tabindex')).length",
        "scrollable-region-focusable",
        "table-wrap",
    ),
}


@pytest.mark.parametrize("regression", REGRESSIONS.values(), ids=REGRESSIONS)
def test_the_axe_check_fails_on_the_violations_it_was_brought_in_for(
    browser, live_server, demo, regression
):
    """The check is only worth its passes if it catches a violation: the two serious ones
    found on these pages before, put back as they were, each fail it."""
    main_page = regression.page
    context = open_as(
        browser, live_server, user=main_page.user, language="en", viewport=regression.viewport
    )
    try:
        page = context.new_page()
        visit(page, demo[main_page.name], "en")
        assert regression.rule not in {v["id"] for v in axe_violations(page)}

        assert page.evaluate(regression.undo_fix) >= 1

        caught = [
            v
            for v in axe_violations(page)
            if v["id"] == regression.rule and v["impact"] in FAILING_IMPACTS
        ]
        assert caught, f"axe did not report {regression.rule}"
        assert any(regression.target in target for target in caught[0]["targets"]), caught
    finally:
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_on_a_phone_every_landing_page_download_button_is_on_screen(
    browser, live_server, demo, language
):
    context = open_as(browser, live_server, user=None, language=language, viewport=PHONE)
    try:
        page = context.new_page()
        visit(page, demo["landing"], language)
        buttons = page.locator(f"{FILES} a.button[href$='/download']")
        assert buttons.count() == 3  # D-001's three public files

        for index in range(buttons.count()):
            button = buttons.nth(index)
            # Scroll the page down to it, and nothing sideways: a button that only a
            # sideways scroll of its table reveals is off the screen for the reader.
            button.evaluate("el => window.scrollBy(0, el.getBoundingClientRect().top - 100)")
            box = button.bounding_box()

            assert box is not None and box["width"] > 0
            assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
            assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], box
        # A row is a card: no taller than a screen, though the SHA-256 is shown whole.
        for row in page.locator(f"{FILES} tbody tr").all():
            assert row.bounding_box()["height"] < PHONE["height"] / 2
    finally:
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_citation_s_copy_button_puts_exactly_that_text_on_the_clipboard(
    browser, live_server, demo, language
):
    context = open_as(browser, live_server, user=None, language=language)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(demo["landing"])
        for key in ("text", "bibtex", "ris"):
            shown = page.locator(f"#cite-{key}-text").inner_text().strip()
            button = page.locator(f"button[data-copy-target='cite-{key}-text']")

            button.click()

            assert page.evaluate("navigator.clipboard.readText()").strip() == shown
            expect(button.locator("xpath=..").locator(".copy-status")).not_to_be_empty()
        assert "[Data set]" in page.locator("#cite-text-text").inner_text()
    finally:
        context.close()


def test_uppy_s_browse_button_shows_keyboard_focus_with_an_outline(browser, live_server, demo):
    context = open_as(browser, live_server, user="researcher", language="en")
    try:
        page = context.new_page()
        page.goto(demo["upload"])
        browse = page.locator("#uppy-dashboard .uppy-Dashboard-browse").first
        expect(browse).to_be_visible()
        page.keyboard.press("Tab")  # a keyboard user: focus is shown as :focus-visible

        browse.focus()

        style = browse.evaluate(
            "el => [el.matches(':focus-visible'), getComputedStyle(el).outlineStyle,"
            " getComputedStyle(el).outlineWidth]"
        )
        assert style == [True, "solid", "3px"]
    finally:
        context.close()
