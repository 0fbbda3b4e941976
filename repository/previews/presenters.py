"""What the object page shows of a preview: the viewer's planes, or a sequencing summary
with its two small charts (drawn as SVG on the server: no chart library, no script)."""

from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import gettext as _

from core import machine_text
from repository.models import DataObject

CHART_WIDTH = 300
CHART_HEIGHT = 100
# The quality chart's scale: Phred 0 to 42 (Illumina's highest).
QUALITY_MAX = 42


@dataclass(frozen=True)
class Chart:
    """An SVG chart of ``CHART_WIDTH`` x ``CHART_HEIGHT``: a line (``points``) or bars
    (``bars``: x, y, width, height), with its axis labels."""

    label: str
    x_first: int
    x_last: int
    y_top: str
    points: str = ""
    bars: tuple[tuple[float, float, float, float], ...] = ()


@dataclass(frozen=True)
class Plane:
    number: int
    label: str
    info_url: str


@dataclass(frozen=True)
class PreviewPanel:
    """The preview panel of the object page, for someone who may see the preview."""

    state: str
    state_label: str
    kind: str
    reason: str
    thumbnail_url: str = ""
    planes: tuple[Plane, ...] = ()
    summary: dict | None = None
    quality_chart: Chart | None = None
    length_chart: Chart | None = None
    # Why a CRAM's summary has no reads per reference, in the reader's language.
    counts_note: str = ""


def _plane_label(plane: dict, number: int) -> str:
    if "channel" in plane and "z" in plane:
        return _("Channel %(channel)s, plane %(z)s") % {
            "channel": plane["channel"] + 1,
            "z": plane["z"] + 1,
        }
    if "frame" in plane:
        return _("Frame %(frame)s") % {"frame": plane["frame"] + 1}
    return _("Image %(number)s") % {"number": number + 1}


def quality_chart(points: list[list]) -> Chart | None:
    """Mean quality by read position (``[[first, last, mean], …]``) as a line."""
    if not points:
        return None
    first, last = points[0][0], points[-1][1]
    span = max(last - first, 1)
    coordinates = []
    for start, end, mean in points:
        x = ((start + end) / 2 - first) / span * CHART_WIDTH
        y = CHART_HEIGHT - min(max(mean, 0), QUALITY_MAX) / QUALITY_MAX * CHART_HEIGHT
        coordinates.append(f"{x:.1f},{y:.1f}")
    return Chart(
        label=_("Mean quality (Phred) by position in the read"),
        x_first=first,
        x_last=last,
        y_top=str(QUALITY_MAX),
        points=" ".join(coordinates),
    )


def length_chart(histogram: list[list]) -> Chart | None:
    """Reads by length (``[[shortest, longest, reads], …]``) as bars."""
    if not histogram:
        return None
    first, last = histogram[0][0], histogram[-1][1]
    span = last - first + 1
    most = max(reads for _, _, reads in histogram)
    bars = []
    for start, end, reads in histogram:
        x = (start - first) / span * CHART_WIDTH
        width = max((end - start + 1) / span * CHART_WIDTH, 1.0)
        height = reads / most * CHART_HEIGHT
        bars.append(
            (round(x, 1), round(CHART_HEIGHT - height, 1), round(width, 1), round(height, 1))
        )
    return Chart(
        label=_("Reads by length"),
        x_first=first,
        x_last=last,
        y_top=f"{most:,}",
        bars=tuple(bars),
    )


def preview_panel(*, data_object: DataObject, may_preview: bool) -> PreviewPanel | None:
    """The panel, or ``None`` when there is nothing to show ``may_preview``'s holder."""
    state = data_object.preview_state
    if not may_preview or state == DataObject.PreviewState.NONE:
        return None
    preview = data_object.preview or {}
    panel = {
        "state": state,
        "state_label": DataObject.PreviewState(state).label,
        "kind": preview.get("kind", ""),
        # Kura's words, stored as codes (core.machine_text): in the reader's language; a
        # reason stored as text by an older preview is shown as stored.
        "reason": str(machine_text.parse(preview.get("reason") or "")),
    }
    if state != DataObject.PreviewState.READY:
        return PreviewPanel(**panel)
    if panel["kind"] == "image":
        planes = tuple(
            Plane(
                number=number,
                label=_plane_label(plane, number),
                info_url=reverse("object-iiif-info", args=[data_object.pk, number]),
            )
            for number, plane in enumerate(preview.get("planes", []))
        )
        return PreviewPanel(
            **panel,
            thumbnail_url=reverse("object-thumbnail", args=[data_object.pk]),
            planes=planes,
        )
    summary = preview.get("summary") or {}
    return PreviewPanel(
        **panel,
        summary=summary,
        quality_chart=quality_chart(summary.get("mean_quality", [])),
        length_chart=length_chart(summary.get("length_histogram", [])),
        counts_note=str(machine_text.parse(summary.get("counts_reason") or "")),
    )
