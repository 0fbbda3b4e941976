"""The events the audit trail gained for issue 13: uploads (started, completed, aborted),
DMP record and plan edits, imports and rejected access requests. Each is written by the
real page or API flow, in the transaction of its change, can be neither changed nor
deleted, and reads on the page and in the CSV with labels, not codes."""

import csv
import datetime
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import capfirst
from rest_framework.test import APIClient

from accounts.invitations import member_invite
from accounts.members import member_remove
from accounts.models import Role
from core.vocabularies import Tier
from dmp import services
from dmp.exports import csv_rows
from dmp.madmp import madmp_export
from dmp.models import DmpRecord
from repository.governance.audit import audit_values_shown
from repository.models import AccessRequest, AuditEvent, DataObject, RequestStatus
from repository.preservation import uploads
from repository.services import audit_event_record
from tests.dmp.complete_records import complete_record
from tests.dmp.test_services import complete_fields
from tests.factories import DataObjectFactory, MembershipFactory, ProjectFactory

from .upload_client import StartedUpload, UploadClient

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action
DATA = b"audited bytes " * 100
ADDRESS = "198.51.100.23"


def events(action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


# --- Uploads -------------------------------------------------------------------------------


@pytest.fixture
def researcher():
    return MembershipFactory(role=Role.RESEARCHER)


class AddressedUploadClient(UploadClient):
    """The upload API from a known client address."""

    def __init__(self, user):
        super().__init__(user)
        self.client.defaults["REMOTE_ADDR"] = ADDRESS

    def start_ok(self, **fields) -> StartedUpload:
        response = self.start(**fields)
        assert response.status_code == 201, response.content
        body = response.json()
        return StartedUpload(**{name: body[name] for name in StartedUpload.__annotations__})


def _start(client, researcher, **overrides):
    fields = {
        "project": researcher.project_id,
        "filename": "liver_R1.fastq.gz",
        "size": len(DATA),
        "content_type": "application/gzip",
        "tier": Tier.SHARED,
        **overrides,
    }
    return client.start_ok(**fields)


def test_an_upload_is_audited_when_it_starts_and_once_when_it_completes(researcher):
    client = AddressedUploadClient(researcher.user)
    upload = _start(client, researcher)
    etags = client.put_parts(upload, DATA, [1])

    assert client.complete(upload.id, etags).status_code == 200
    assert client.complete(upload.id, etags).status_code == 200  # again: no second event

    (started,) = events(Action.UPLOAD_STARTED)
    (completed,) = events(Action.UPLOAD_COMPLETED)
    data_object = DataObject.objects.get(pk=upload.object_id)
    for event in (started, completed):
        assert (event.actor, event.data_object, event.project_id, event.ip_address) == (
            researcher.user,
            data_object,
            researcher.project_id,
            ADDRESS,
        )
    assert started.after == {"status": "uploading", "size": len(DATA), "tier": "shared"}
    assert (completed.before, completed.after) == ({"status": "uploading"}, {"status": "stored"})


def test_an_aborted_upload_is_audited(researcher):
    client = AddressedUploadClient(researcher.user)
    upload = _start(client, researcher)

    assert client.abort(upload.id).status_code == 204

    (aborted,) = events(Action.UPLOAD_ABORTED)
    assert (aborted.actor, aborted.data_object_id, aborted.ip_address) == (
        researcher.user,
        upload.object_id,
        ADDRESS,
    )
    assert aborted.after == {"status": "abandoned"}
    assert not events(Action.UPLOAD_COMPLETED)


def test_an_embargoed_upload_notes_its_date(researcher, settings):
    settings.KURA_REVIEWED_TIERS = []
    available = timezone.localdate() + datetime.timedelta(days=40)
    client = AddressedUploadClient(researcher.user)

    _start(client, researcher, tier=Tier.EMBARGOED, available_date=available.isoformat())

    (started,) = events(Action.UPLOAD_STARTED)
    assert started.after["tier"] == "embargoed"
    assert started.after["available_date"] == available.isoformat()


def test_upload_steps_are_in_the_trail_but_not_on_the_dashboard(client, researcher):
    """The dashboard never names an upload in flight; the trail is where its steps are."""
    uploader = AddressedUploadClient(researcher.user)
    upload = _start(uploader, researcher, filename="in-flight.fastq.gz")
    uploader.abort(_start(uploader, researcher, filename="given-up.fastq.gz").id)
    client.force_login(MembershipFactory(project=researcher.project, role=Role.PM).user)

    dashboard = client.get(f"/projects/{researcher.project_id}/dashboard/").content.decode()
    trail = client.get(f"/projects/{researcher.project_id}/audit/").content.decode()

    for name in ("in-flight.fastq.gz", "given-up.fastq.gz"):
        assert name not in dashboard
        assert name in trail
    assert [e.data_object_id for e in events(Action.UPLOAD_STARTED)][0] == upload.object_id


def test_a_refused_upload_start_leaves_no_event(researcher, monkeypatch):
    class StoreAway:
        def create(self, key, content_type):
            raise ConnectionError("storage is away")

    monkeypatch.setattr(uploads, "object_store", StoreAway)
    client = AddressedUploadClient(researcher.user)

    response = client.start(
        project=researcher.project_id,
        filename="x.bin",
        size=10,
        content_type="application/octet-stream",
        tier=Tier.SHARED,
    )

    assert response.status_code == 503
    assert not DataObject.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_completion_rolled_back_after_its_event_leaves_no_event(researcher, monkeypatch):
    """The event is written in the completion's transaction: when a later step of it fails
    (here the tier request an opening tier asks for), the event goes with the rest."""
    client = AddressedUploadClient(researcher.user)
    # Reviewed: requested on completion, with the uploader's reason.
    upload = _start(client, researcher, tier=Tier.PUBLIC, reason="For the paper.")
    etags = client.put_parts(upload, DATA, [1])

    def broken_request(**kwargs):
        raise RuntimeError("the tier request could not be written")

    monkeypatch.setattr(uploads, "tier_request_create", broken_request)
    session = uploads.UploadSession.objects.get(pk=upload.id)
    with pytest.raises(RuntimeError):
        uploads.upload_complete(session=session, parts=etags, ip_address=ADDRESS)

    assert DataObject.objects.get(pk=upload.object_id).status == DataObject.Status.UPLOADING
    assert not events(Action.UPLOAD_COMPLETED)
    assert len(events(Action.UPLOAD_STARTED)) == 1


# --- DMP records and the plan --------------------------------------------------------------


@pytest.fixture
def steward(client):
    """A data manager of a project, logged in."""
    membership = MembershipFactory(role=Role.DATA_MANAGER)
    client.force_login(membership.user)
    return membership


def record_form_data(record: DmpRecord, **changes) -> dict:
    """What the record form posts for ``record`` as it is, with ``changes``."""
    data = {}
    for name in services.RECORD_FIELDS:
        value = getattr(record, name)
        if name == "contains_personal_data":  # a select of three states, not a checkbox
            data[name] = {True: "true", False: "false", None: "unknown"}[value]
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = (
            "" if value is None else value.isoformat() if hasattr(value, "isoformat") else value
        )
    creators = list(record.creators.order_by("position")) if record.pk else []
    data.update(
        {
            "creators-TOTAL_FORMS": str(len(creators)),
            "creators-INITIAL_FORMS": str(len(creators)),
        }
    )
    for index, creator in enumerate(creators):
        data[f"creators-{index}-id"] = creator.pk
        data[f"creators-{index}-name_ja"] = creator.name_ja
        data[f"creators-{index}-name_en"] = creator.name_en
    data.update(changes)
    return data


@pytest.fixture
def record(steward):
    return services.record_create(
        actor=steward.user,
        project=steward.project,
        fields=complete_fields(),
        creators=[{"name_en": "Hanako Sato"}],
    )


def test_creating_a_record_on_the_page_is_audited_with_what_it_was_given(client, steward):
    data = record_form_data(DmpRecord(**complete_fields()))
    data.update({"creators-TOTAL_FORMS": "1", "creators-INITIAL_FORMS": "0"})
    data["creators-0-name_en"] = "Taro Yamada"

    response = client.post(
        f"/projects/{steward.project_id}/dmp/records/new/", data, REMOTE_ADDR=ADDRESS
    )

    assert response.status_code == 302
    (created,) = events(Action.RECORD_CREATED)
    assert (created.actor, created.record.data_number, created.ip_address) == (
        steward.user,
        "D-001",
        ADDRESS,
    )
    assert created.before == {}
    assert created.after["access_rights"] == "shared"
    assert created.after["creators"] == [{"name_en": "Taro Yamada"}]
    assert "remarks_en" not in created.after  # left empty


def test_editing_a_record_on_the_page_audits_only_what_changed(client, steward, record):
    url = f"/projects/{steward.project_id}/dmp/records/{record.pk}/edit/"

    response = client.post(
        url,
        record_form_data(
            record,
            title_ja="顕微鏡画像（改訂）",
            access_rights=Tier.EMBARGOED,
            available_date="2031-03-01",
            contains_personal_data="true",
        ),
        REMOTE_ADDR=ADDRESS,
    )

    assert response.status_code == 302, response.context and response.context["form"].errors
    (edited,) = events(Action.RECORD_EDITED)
    assert (edited.actor, edited.record, edited.project_id, edited.ip_address) == (
        steward.user,
        record,
        steward.project_id,
        ADDRESS,
    )
    assert edited.before == {
        "title_ja": "顕微鏡画像",
        "access_rights": "shared",
        "available_date": None,
        "contains_personal_data": False,
    }
    assert edited.after == {
        "title_ja": "顕微鏡画像（改訂）",
        "access_rights": "embargoed",
        "available_date": "2031-03-01",
        "contains_personal_data": True,
    }


def test_saving_a_record_unchanged_writes_no_event(client, steward, record):
    url = f"/projects/{steward.project_id}/dmp/records/{record.pk}/edit/"

    response = client.post(url, record_form_data(record))

    assert response.status_code == 302
    assert not events(Action.RECORD_EDITED)


def test_changing_the_creators_is_audited(steward, record):
    services.record_update(
        actor=steward.user,
        record=record,
        fields={},
        creators=[{"name_en": "Hanako Sato"}, {"name_ja": "山田 太郎"}],
    )

    (edited,) = events(Action.RECORD_EDITED)
    assert edited.before == {"creators": [{"name_en": "Hanako Sato"}]}
    assert edited.after == {"creators": [{"name_en": "Hanako Sato"}, {"name_ja": "山田 太郎"}]}


def test_editing_a_record_through_the_api_is_audited(steward, record):
    api = APIClient(REMOTE_ADDR=ADDRESS)
    api.force_authenticate(steward.user)

    response = api.patch(
        f"/api/v1/records/{record.pk}/", {"title_en": "Mouse brain"}, format="json"
    )

    assert response.status_code == 200, response.content
    (edited,) = events(Action.RECORD_EDITED)
    assert (edited.before, edited.after, edited.ip_address) == (
        {"title_en": ""},
        {"title_en": "Mouse brain"},
        ADDRESS,
    )


def test_a_refused_record_edit_leaves_no_event(client, steward, record):
    url = f"/projects/{steward.project_id}/dmp/records/{record.pk}/edit/"

    response = client.post(url, record_form_data(record, data_man_email="not an address"))

    assert response.status_code == 200  # the form again, with the error
    assert not events(Action.RECORD_EDITED)
    record.refresh_from_db()
    assert record.data_man_email == "sato@example.org"


def test_editing_the_plan_on_the_page_audits_the_changed_answers(client, steward):
    url = f"/projects/{steward.project_id}/dmp/edit/"
    client.post(url, {"title": "Plan", "data_produced": "Images"}, REMOTE_ADDR=ADDRESS)

    client.post(
        url,
        {"title": "Plan", "data_produced": "Images and tables", "management_roles": "The PM"},
        REMOTE_ADDR=ADDRESS,
    )

    first, second = events(Action.PLAN_EDITED)
    for event in (first, second):
        assert (event.actor, event.project_id, event.record, event.data_object) == (
            steward.user,
            steward.project_id,
            None,
            None,
        )
        assert event.ip_address == ADDRESS
    assert (first.before, first.after) == (
        {},
        {"title": "Plan", "data_produced": "Images", "version": 1},
    )
    assert second.before == {"data_produced": "Images", "management_roles": "", "version": 1}
    assert second.after == {
        "data_produced": "Images and tables",
        "management_roles": "The PM",
        "version": 2,
    }


def test_a_plan_edit_rolled_back_leaves_no_event(steward):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.plan_save(
            actor=steward.user, plan_or_project=steward.project, answers={"title": "Plan"}
        )
        raise RuntimeError("the request failed after the save")

    assert not AuditEvent.objects.exists()


# --- Imports ---------------------------------------------------------------------------------


@pytest.fixture
def source_and_target():
    """A project with two complete records, and an empty project managed by the same PM."""
    pm = MembershipFactory(role=Role.PM)
    complete_record(pm.project, 1)
    complete_record(pm.project, 2, access_rights=Tier.SHARED)
    target = ProjectFactory(institution=pm.project.institution)
    MembershipFactory(project=target, user=pm.user, role=Role.PM)
    return pm.project, target, pm.user


def _import(client, project, fmt: str, content: bytes):
    upload = SimpleUploadedFile("records.dat", content)
    url = f"/projects/{project.pk}/dmp/import/"
    response = client.post(url, {"format": fmt, "file": upload}, REMOTE_ADDR=ADDRESS)
    if fmt == "madmp-json" and response.status_code == 200:  # the review, then confirm
        token = response.context["form"]["token"].value()
        response = client.post(url, {"token": token}, REMOTE_ADDR=ADDRESS)
    return response


def _csv_of(project) -> bytes:
    return b"".join(csv_rows(project.records.order_by("data_number"), "ja"))


@pytest.mark.parametrize("fmt", ["csti-csv", "madmp-json"])
def test_an_import_is_one_event_with_its_format_and_count(client, source_and_target, fmt):
    source, target, pm = source_and_target
    if fmt == "csti-csv":
        content = _csv_of(source)
    else:
        content = json.dumps(madmp_export(project=source)).encode()
    client.force_login(pm)

    response = _import(client, target, fmt, content)

    assert response.status_code == 302
    (imported,) = events(Action.RECORDS_IMPORTED)
    assert (imported.actor, imported.project, imported.record, imported.ip_address) == (
        pm,
        target,
        None,
        ADDRESS,
    )
    assert imported.after == {"format": fmt, "created": 2}
    assert imported.detail == "D-001, D-002"
    assert not events(Action.RECORD_CREATED)  # one event for the import, not one per record


def test_a_refused_import_leaves_no_event(client, source_and_target):
    source, target, pm = source_and_target
    broken = _csv_of(source).decode("utf-8-sig").replace("D-002", "D-001")
    client.force_login(pm)

    response = _import(client, target, "csti-csv", broken.encode("utf-8-sig"))

    assert response.status_code == 400
    assert not AuditEvent.objects.exists()


def test_an_madmp_import_refused_for_a_contradiction_leaves_no_event(client, source_and_target):
    """The maDMP reader finds a contradiction of its own: refused before anything is
    written, so no records and no event."""
    source, target, pm = source_and_target
    document = madmp_export(project=source)
    dataset = next(
        d for d in document["dmp"]["dataset"] if d["x_kura"]["access_rights"] == "shared"
    )
    dataset["distribution"][0]["data_access"] = "open"
    client.force_login(pm)

    response = _import(client, target, "madmp-json", json.dumps(document).encode())

    assert response.status_code == 400
    assert "Contradicts" in response.content.decode()
    assert not target.records.exists()
    assert not AuditEvent.objects.exists()


# --- Rejected access requests ----------------------------------------------------------------


def _pending(shared, outsider) -> AccessRequest:
    return AccessRequest.objects.create(
        record=shared["record"], requester=outsider, purpose="Replication of figure 3."
    )


def test_rejecting_on_the_page_is_audited(client, shared, outsider):
    access_request = _pending(shared, outsider)
    client.force_login(shared["pm"])

    response = client.post(
        f"/projects/{shared['project'].pk}/access-requests/{access_request.pk}/reject",
        {f"reject-{access_request.pk}-comment": "Consent does not cover it."},
        REMOTE_ADDR=ADDRESS,
    )

    assert response.status_code == 302
    (rejected,) = events(Action.ACCESS_REQUEST_REJECTED)
    assert (rejected.actor, rejected.record, rejected.ip_address, rejected.detail) == (
        shared["pm"],
        shared["record"],
        ADDRESS,
        "Replication of figure 3.",
    )
    assert rejected.before == {"request": access_request.pk, "status": "pending"}
    assert rejected.after == {
        "request": access_request.pk,
        "status": "rejected",
        "requester": outsider.username,
        "decision_comment": "Consent does not cover it.",
    }


def test_rejecting_through_the_api_is_audited(shared, outsider):
    access_request = _pending(shared, outsider)
    api = APIClient(REMOTE_ADDR=ADDRESS)
    api.force_authenticate(shared["pm"])

    response = api.post(
        f"/api/v1/access-requests/{access_request.pk}/decision",
        {"approve": False, "comment": "Not for this purpose."},
        format="json",
    )

    assert response.status_code == 200, response.content
    (rejected,) = events(Action.ACCESS_REQUEST_REJECTED)
    assert (rejected.actor, rejected.ip_address) == (shared["pm"], ADDRESS)
    assert AccessRequest.objects.get(pk=access_request.pk).status == RequestStatus.REJECTED


def test_a_refused_rejection_leaves_no_event(client, shared, outsider):
    access_request = _pending(shared, outsider)
    client.force_login(shared["pm"])

    response = client.post(
        f"/projects/{shared['project'].pk}/access-requests/{access_request.pk}/reject",
        {f"reject-{access_request.pk}-comment": "   "},
    )

    assert response.status_code == 400
    assert not AuditEvent.objects.exists()
    assert AccessRequest.objects.get(pk=access_request.pk).status == RequestStatus.PENDING


# --- Never editable ----------------------------------------------------------------------------

NEW_ACTIONS = [
    Action.UPLOAD_STARTED,
    Action.UPLOAD_COMPLETED,
    Action.UPLOAD_ABORTED,
    Action.ACCESS_REQUEST_REJECTED,
    Action.PLAN_EDITED,
    Action.RECORD_CREATED,
    Action.RECORD_EDITED,
    Action.RECORDS_IMPORTED,
]


@pytest.mark.parametrize("action", NEW_ACTIONS)
def test_new_events_can_be_neither_changed_nor_deleted(admin_client, action):
    data_object = DataObjectFactory()
    event = audit_event_record(
        actor=data_object.uploaded_by,
        action=action,
        data_object=data_object,
        after={"status": "stored"},
    )
    info = "admin:repository_auditevent"

    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(after={})
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    change = admin_client.post(reverse(f"{info}_change", args=[event.pk]), {"detail": "edited"})
    delete = admin_client.post(reverse(f"{info}_delete", args=[event.pk]), {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    assert AuditEvent.objects.get(pk=event.pk).after == {"status": "stored"}


def test_a_project_level_event_needs_a_subject():
    with pytest.raises(ValueError, match="data object or a record"):
        audit_event_record(actor=None, action=Action.PLAN_EDITED)


# --- Reading: labels, not codes ------------------------------------------------------------------


@pytest.fixture
def tier_change(shared):
    """A tier change from non-shared to embargoed, the way the trail stores it."""
    return audit_event_record(
        actor=shared["pm"],
        action=Action.TIER_CHANGED,
        data_object=shared["object"],
        before={"tier": "non_shared", "available_date": None},
        after={"tier": "embargoed", "available_date": "2031-03-01"},
    )


def _cells(html: str, event: AuditEvent) -> tuple[str, str]:
    """The before and after cells of ``event``'s row."""
    row = html.split(f'<tr class="audit-{event.action}">', 1)[1].split("</tr>", 1)[0]
    before = row.split('<td class="audit-before">', 1)[1].split("</td>", 1)[0]
    after = row.split('<td class="audit-after">', 1)[1].split("</td>", 1)[0]
    return before, after


def test_the_page_shows_labels_not_codes(client, shared, tier_change):
    client.force_login(shared["pm"])

    html = client.get(f"/projects/{shared['project'].pk}/audit/").content.decode()

    before, after = _cells(html, tier_change)
    assert before == "Tier: Non-shared / non-public<br>Available date: —"
    assert after == "Tier: Embargoed<br>Available date: 2031-03-01"
    for code in ("non_shared", "None", "available_date", "tier:"):
        assert code not in before + after


def test_the_page_reads_in_japanese(client, shared, tier_change):
    client.force_login(shared["pm"])

    html = client.get(
        f"/projects/{shared['project'].pk}/audit/", HTTP_ACCEPT_LANGUAGE="ja"
    ).content.decode()

    before, after = _cells(html, tier_change)
    assert "non_shared" not in before and "Tier" not in before
    assert "2031-03-01" in after


def test_record_edits_read_with_item_names_and_yes_no(client, steward, record):
    services.record_update(
        actor=steward.user,
        record=record,
        fields={"data_type": "dataset", "contains_personal_data": True},
    )

    html = client.get(f"/projects/{steward.project_id}/audit/").content.decode()

    event = AuditEvent.objects.get(action=Action.RECORD_EDITED)
    before, after = _cells(html, event)
    assert before == "Data type: experimental data<br>Contains personal data: No"
    assert after == "Data type: dataset<br>Contains personal data: Yes"  # not "ja | en"
    assert event.after == {"data_type": "dataset", "contains_personal_data": True}


def test_an_import_reads_with_its_format_named(client, source_and_target):
    source, target, pm = source_and_target
    client.force_login(pm)
    _import(client, target, "csti-csv", _csv_of(source))

    html = client.get(f"/projects/{target.pk}/audit/").content.decode()

    _, after = _cells(html, AuditEvent.objects.get(action=Action.RECORDS_IMPORTED))
    assert after == "Format: Common-metadata CSV (Japanese or English)<br>Records created: 2"


def _csv_rows(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8").removeprefix("\ufeff")
    return list(csv.DictReader(io.StringIO(body)))


def test_the_csv_shows_labels_not_codes(client, shared, tier_change):
    client.force_login(shared["pm"])

    rows = _csv_rows(client.get(f"/projects/{shared['project'].pk}/audit/?format=csv"))

    (row,) = [r for r in rows if r["action"] == "tier_changed"]
    assert row["before"] == "Tier: Non-shared / non-public\nAvailable date: —"
    assert row["after"] == "Tier: Embargoed\nAvailable date: 2031-03-01"
    assert tier_change.before == {"tier": "non_shared", "available_date": None}  # stored raw


def test_the_csv_reads_in_the_language_of_the_request(client, shared, tier_change):
    client.force_login(shared["pm"])

    response = client.get(
        f"/projects/{shared['project'].pk}/audit/?format=csv", HTTP_ACCEPT_LANGUAGE="ja"
    )
    with translation.override("en"):  # as another request on this thread would leave it
        (row,) = [r for r in _csv_rows(response) if r["action"] == "tier_changed"]

    with translation.override("ja"):
        tier = translation.gettext("tier")
        non_shared = translation.gettext("Non-shared / non-public")
    assert row["before"].startswith(f"{tier[0].upper()}{tier[1:]}: {non_shared}")


def test_grant_moments_read_in_local_time(client, shared, outsider):
    moment = datetime.datetime(2031, 3, 1, 23, 59, 59, tzinfo=datetime.UTC)
    event = audit_event_record(
        actor=shared["pm"],
        action=Action.GRANT_REVOKED,
        record=shared["record"],
        before={"grant": 7, "grantee": outsider.username, "revoked": False},
        after={"grant": 7, "revoked": True, "revoked_at": moment.isoformat()},
    )
    client.force_login(shared["pm"])

    html = client.get(f"/projects/{shared['project'].pk}/audit/").content.decode()

    before, after = _cells(html, event)
    local = timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
    assert before == f"Grant no.: 7<br>Grantee: {outsider.username}<br>Revoked: No"
    assert after == f"Grant no.: 7<br>Revoked at: {local}<br>Revoked: Yes"


def test_member_and_invitation_events_read_with_names_not_codes(client):
    pm = MembershipFactory(role=Role.PM)
    leaver = MembershipFactory(project=pm.project, role=Role.DATA_MANAGER)
    invitation, _token = member_invite(
        actor=leaver.user,
        project=pm.project,
        kind="email",
        value="alt@example.net",
        role=Role.DATA_MANAGER,
    )
    member_remove(actor=pm.user, project=pm.project, membership_pk=leaver.pk)
    client.force_login(pm.user)
    # Kura withdrew the leaver's invitation: why is kept as a code, not as English words.
    revoked = AuditEvent.objects.get(action=Action.INVITATION_REVOKED)
    assert revoked.before["reason"] == "inviter_may_not_invite"

    html = client.get(f"/projects/{pm.project.pk}/audit/").content.decode()

    removed = AuditEvent.objects.get(action=Action.MEMBER_REMOVED)
    assert _cells(html, removed)[0] == f"User: {leaver.user.username}<br>Role: Data manager"
    assert _cells(html, revoked)[0] == (
        f"Invitation no.: {invitation.pk}<br>Role: Data manager<br>Addressed by: E-mail address"
        f"<br>Invited by: {leaver.user.username}<br>Address: alt@example.net"
        "<br>Reason: the inviter may no longer invite to this role"
    )
    japanese = client.get(
        f"/projects/{pm.project.pk}/audit/", HTTP_ACCEPT_LANGUAGE="ja"
    ).content.decode()
    before = _cells(japanese, revoked)[0]
    for code in ("data_manager", "invited_by", "inviter_may_not_invite", "kind:", "role:"):
        assert code not in before
    with translation.override("ja"):
        for words in ("the inviter may no longer invite to this role", "Data manager"):
            assert translation.gettext(words) in before


def test_an_invitation_withdrawn_before_reasons_were_codes_reads_the_same():
    written = {"invitation": 7, "reason": "the inviter may no longer invite to this role"}
    coded = {**written, "reason": "inviter_may_not_invite"}

    with translation.override("ja"):
        older = audit_values_shown(action=Action.INVITATION_REVOKED, values=written)
        newer = audit_values_shown(action=Action.INVITATION_REVOKED, values=coded)
        reason = (capfirst(translation.gettext("reason")), translation.gettext(written["reason"]))

    assert older == newer
    assert newer[-1] == reason


def test_an_unknown_key_still_shows(client, shared):
    event = audit_event_record(
        actor=None,
        action=Action.DOWNLOAD,
        data_object=shared["object"],
        after={"something_new": "x"},
    )
    client.force_login(shared["pm"])

    html = client.get(f"/projects/{shared['project'].pk}/audit/").content.decode()

    assert _cells(html, event)[1] == "something_new: x"


def test_the_trail_page_still_needs_few_queries(
    client, steward, record, django_assert_max_num_queries
):
    for number in range(20):
        services.record_update(
            actor=steward.user, record=record, fields={"title_en": f"Version {number}"}
        )
    with django_assert_max_num_queries(12):
        response = client.get(f"/projects/{steward.project_id}/audit/")

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 21  # 20 edits and the creation
