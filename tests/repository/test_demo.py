import hashlib
import io

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone, translation
from django.utils.text import capfirst

from accounts.models import Membership, Project, Role, User
from accounts.roles import is_curator, is_program_officer
from core.vocabularies import Tier
from dmp.models import DmpRecord, DmpRecordRevision
from repository.models import (
    AccessRequest,
    AuditEvent,
    DataObject,
    RequestStatus,
    TierChangeRequest,
)

pytestmark = pytest.mark.django_db

DEMO_USERNAMES = {
    "pm",
    "data_manager",
    "researcher",
    "collaborator",
    "outsider",
    "curator",
    "program_officer",
}


def _load() -> str:
    out = io.StringIO()
    call_command("kura_demo", stdout=out)
    return out.getvalue()


def _snapshot() -> dict:
    return {
        model.__name__: sorted(model.objects.values_list("pk", flat=True))
        for model in (
            User,
            Project,
            Membership,
            DmpRecord,
            DmpRecordRevision,
            DataObject,
            TierChangeRequest,
            AccessRequest,
        )
    }


def test_demo_creates_people_in_every_role_and_prints_their_logins():
    output = _load()

    assert set(User.objects.values_list("username", flat=True)) >= DEMO_USERNAMES
    project = Project.objects.get(memberships__user__username="pm")
    roles = dict(project.memberships.values_list("user__username", "role"))
    assert roles == {
        "pm": Role.PM,
        "data_manager": Role.DATA_MANAGER,
        "researcher": Role.RESEARCHER,
        "collaborator": Role.COLLABORATOR,
    }
    assert not Membership.objects.filter(user__username="outsider").exists()
    assert list(project.dmp.versions.values_list("version", "saved_by__username")) == [(1, "pm")]
    assert is_curator(User.objects.get(username="curator"))
    assert is_program_officer(User.objects.get(username="program_officer"))
    for username in DEMO_USERNAMES:
        user = User.objects.get(username=username)
        assert user.check_password(settings.KURA_DEMO_PASSWORD), username
        assert username in output
    assert settings.KURA_DEMO_PASSWORD in output


def test_demo_objects_cover_every_tier_and_live_in_the_configured_storage():
    _load()

    objects = DataObject.objects.all()
    assert {o.tier for o in objects} == set(Tier.values)
    embargoed = objects.filter(tier=Tier.EMBARGOED).get()
    assert embargoed.available_date.year == timezone.localdate().year + 1
    assert TierChangeRequest.objects.filter(
        status=RequestStatus.PENDING, requested_tier=Tier.PUBLIC
    ).exists()
    assert AccessRequest.objects.filter(
        status=RequestStatus.PENDING,
        requester__username="outsider",
        record__access_rights=Tier.SHARED,
    ).exists()
    for data_object in objects:
        with default_storage.open(data_object.storage_key, "rb") as fh:
            data = fh.read()
        assert len(data) == data_object.size
        assert hashlib.sha256(data).hexdigest() == data_object.sha256
        assert hashlib.md5(data).hexdigest() == data_object.md5  # noqa: S324 - fixity, not security
        assert data_object.original_filename not in data_object.storage_key


def test_running_the_demo_twice_changes_nothing():
    _load()
    before = _snapshot()

    output = _load()

    assert _snapshot() == before
    assert "pm" in output


def test_every_demo_record_starts_its_history():
    _load()

    records = set(DmpRecord.objects.values_list("pk", flat=True))
    assert records
    assert set(DmpRecordRevision.objects.filter(number=1).values_list("record", flat=True)) == (
        records
    )


def test_demo_files_are_previewed_once_the_load_commits(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    """A walk through the demo shows previews: the tile scan zooms, the PNGs have
    thumbnails, the FASTQ.gz has its summary, and a visitor sees the public thumbnail."""
    from repository import demo
    from repository.previews.services import data_object_preview_make

    sent: list[int] = []
    monkeypatch.setattr(demo, "preview_send", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        _load()

    pending = DataObject.objects.filter(preview_state=DataObject.PreviewState.PENDING)
    assert sorted(sent) == sorted(pending.values_list("pk", flat=True))
    assert set(pending.values_list("original_filename", flat=True)) == {
        "liver_0001_DAPI-MitoTracker_tilescan.tif",
        "liver_0001_DAPI-MitoTracker_maxproj.png",
        "liver_0002_DAPI-MitoTracker_maxproj.png",
        "liver_RNAseq_S01_R1.fastq.gz",
    }
    for object_id in sent:
        data_object_preview_make(data_object_id=object_id)

    tilescan = DataObject.objects.get(original_filename="liver_0001_DAPI-MitoTracker_tilescan.tif")
    assert tilescan.technical_metadata["format"] == "TIFF"
    assert tilescan.preview_state == DataObject.PreviewState.READY
    (plane,) = tilescan.preview["planes"]
    assert (plane["width"], plane["height"]) == demo.TILESCAN_SIZE
    assert plane["scale_factors"] == [1, 2, 4]  # something to zoom into
    reads = DataObject.objects.get(original_filename="liver_RNAseq_S01_R1.fastq.gz")
    assert reads.preview_state == DataObject.PreviewState.READY
    summary = reads.preview["summary"]
    assert summary["reads"] == demo.FASTQ_READS and summary["length_max"] == 150
    assert summary["length_min"] < 150  # the trimmed tenth
    qualities = [mean for _, _, mean in summary["mean_quality"]]
    assert qualities[0] > qualities[-1] + 4  # falling towards the 3' end

    thumbnail = f"/objects/{tilescan.pk}/preview/thumbnail.jpg"
    landing = client.get(f"/datasets/{tilescan.record_id}/").content.decode()
    assert f'src="{thumbnail}"' in landing
    assert client.get(thumbnail).status_code == 200


def test_the_demos_pending_request_reads_in_the_trail_like_any_other(client):
    _load()
    tier_request = TierChangeRequest.objects.get(status=RequestStatus.PENDING)
    (data_object,) = tier_request.data_objects.all()

    event = AuditEvent.objects.get(action=AuditEvent.Action.TIER_REQUESTED)

    # The shape the service writes for a request made on the object page or at upload.
    assert (event.actor, event.data_object, event.record) == (
        tier_request.requested_by,
        data_object,
        data_object.record,
    )
    assert event.after == {"tier": Tier.PUBLIC, "available_date": None, "request": tier_request.pk}
    assert event.detail == tier_request.reason
    client.force_login(User.objects.get(username="pm"))
    trail = client.get(f"/projects/{tier_request.project_id}/audit/", HTTP_ACCEPT_LANGUAGE="ja")
    row = trail.content.decode().split('<tr class="audit-tier_requested">', 1)[1]
    after = row.split('<td class="audit-after">', 1)[1].split("</td>", 1)[0]
    with translation.override("ja"):
        request_label = capfirst(translation.gettext("request no."))
    assert f"{request_label}: {tier_request.pk}" in after
    assert "tier_change_request" not in after and "requested_tier" not in after
