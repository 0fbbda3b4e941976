"""Where the browser tests keep screenshots: under ``var/screenshots/``, which git ignores.

Screenshots are for people reviewing pages by eye, so they are taken only when asked for:

    KURA_SCREENSHOTS unset, empty or 0   none
    KURA_SCREENSHOTS=1 (or true, yes)    var/screenshots/
    KURA_SCREENSHOTS=review              var/screenshots/review/
    KURA_SCREENSHOTS=/tmp/kura-shots     that folder (an absolute path outside the checkout)

A relative name is always taken under ``var/screenshots/``, never under the current
directory: the tests once read ``KURA_SCREENSHOTS=1`` as a folder named ``1`` in the
working directory, and a folder of screenshots ended up committed at the repository root.
A name that climbs out of ``var/screenshots/``, or an absolute path into the checkout
outside ``var/``, is refused.
"""

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_FOLDER = ROOT / "var" / "screenshots"

OFF = {"", "0", "false", "no", "off"}
ON = {"1", "true", "yes", "on"}
# A screenshot's name becomes one file name: no separators, no climbing out of the folder.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def screenshot_folder(value: str | None, *, root: Path = ROOT) -> Path | None:
    """The folder KURA_SCREENSHOTS asks for (see the module docstring), or None when off."""
    value = (value or "").strip()
    if value.lower() in OFF:
        return None
    ignored = root / "var"
    default = ignored / "screenshots"
    if value.lower() in ON:
        return default
    path = Path(value)
    if path.is_absolute():
        folder = path.resolve()
        if folder.is_relative_to(root) and not folder.is_relative_to(ignored):
            raise ValueError(
                f"KURA_SCREENSHOTS={value} is inside the checkout but not under var/ "
                "(which git ignores); use a name such as KURA_SCREENSHOTS=review "
                "(var/screenshots/review/) or a folder outside the checkout."
            )
        return folder
    folder = (default / path).resolve()
    if not folder.is_relative_to(default):
        raise ValueError(
            f"KURA_SCREENSHOTS={value} leaves var/screenshots/; give a plain name such as "
            "review, or an absolute path outside the checkout."
        )
    return folder


@dataclass(frozen=True)
class Screenshots:
    """Takes a test's screenshots into ``folder``; does nothing when ``folder`` is None."""

    folder: Path | None

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def take(self, target, name: str, **options) -> Path | None:
        """Save ``target`` (a Playwright page or locator) as ``<name>.png`` in the folder."""
        if self.folder is None:
            return None
        if not NAME.fullmatch(name):
            raise ValueError(f"screenshot name {name!r} must be a plain file name")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.png"
        target.screenshot(path=str(path), **options)
        return path
