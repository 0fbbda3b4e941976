"""Deleting a data object: the bytes leave storage, the object disappears everywhere, the
audit trail keeps what it was."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import Http404

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.access import Action, visible_to
from repository.governance import deletion, tiers
from repository.models import AuditEvent, DataObject, RequestStatus, TierChangeRequest
from repository.preservation.object_store import StoreError
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    UserFactory,
    make_curator,
)

pytestmark = pytest.mark.django_db

CONTENT = b"specimen bytes" * 64
SHA256 = "ab" * 32


@pytest.fixture
def stored():
    """A verified public object of a researcher, bytes in S3, in a project with a PM."""
    uploader = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(
        project=uploader.project, access_rights=Tier.PUBLIC, metadata_access=MetadataAccess.OPEN
    )
    data_object = DataObjectFactory(
        project=uploader.project,
        record=record,
        uploaded_by=uploader.user,
        tier=Tier.PUBLIC,
        size=len(CONTENT),
        sha256=SHA256,
        checksum_state=DataObject.ChecksumState.VERIFIED,
        original_filename="liver-01.tiff",
    )
    default_storage.save(data_object.storage_key, ContentFile(CONTENT))
    return data_object


def delete(client, data_object, **extra):
    return client.post(f"/objects/{data_object.pk}/delete", **extra)


@pytest.mark.parametrize("role", ["uploader", Role.PM, Role.DATA_MANAGER])
def test_steward_deletes_bytes_and_object_and_the_trail_keeps_what_it_was(client, stored, role):
    user = (
        stored.uploaded_by
        if role == "uploader"
        else MembershipFactory(project=stored.project, role=role).user
    )
    client.force_login(user)
    assert default_storage.exists(stored.storage_key)

    confirm = client.get(f"/objects/{stored.pk}/delete")
    response = delete(client, stored, REMOTE_ADDR="192.0.2.44")

    assert confirm.status_code == 200
    assert "This cannot be undone" in confirm.content.decode()
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{stored.project_id}/"
    assert not default_storage.exists(stored.storage_key)
    stored.refresh_from_db()
    assert stored.status == DataObject.Status.DELETED
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.ip_address, event.data_object) == (
        AuditEvent.Action.DELETED,
        user,
        "192.0.2.44",
        stored,
    )
    assert event.before == {
        "name": "liver-01.tiff",
        "size": len(CONTENT),
        "sha256": SHA256,
        "tier": Tier.PUBLIC,
        "status": DataObject.Status.STORED,
        "storage_key": stored.storage_key,
    }
    assert event.after == {"status": DataObject.Status.DELETED}


def test_deleted_object_disappears_from_every_page_and_download(client, stored):
    pm = MembershipFactory(project=stored.project, role=Role.PM).user
    client.force_login(pm)
    delete(client, stored)

    for user in (pm, stored.uploaded_by, AnonymousUser()):
        assert not visible_to(user, Action.VIEW_METADATA).filter(pk=stored.pk).exists()
    assert client.get(f"/objects/{stored.pk}/").status_code == 404
    assert client.get(f"/objects/{stored.pk}/download").status_code == 404
    assert "liver-01.tiff" not in client.get(f"/projects/{stored.project_id}/").content.decode()
    client.logout()
    landing = client.get(f"/datasets/{stored.record_id}/").content.decode()
    assert "liver-01.tiff" not in landing
    assert client.get(f"/objects/{stored.pk}/download").status_code == 404


def test_object_page_offers_delete_to_stewards_only(client, stored):
    collaborator = MembershipFactory(project=stored.project, role=Role.COLLABORATOR).user
    link = f'href="/objects/{stored.pk}/delete"'

    client.force_login(stored.uploaded_by)
    steward_page = client.get(f"/objects/{stored.pk}/").content.decode()
    client.force_login(collaborator)
    member_page = client.get(f"/objects/{stored.pk}/").content.decode()

    assert link in steward_page
    assert link not in member_page


@pytest.mark.parametrize("who", ["collaborator", "other_researcher", "outsider", "curator"])
def test_others_get_404_and_nothing_is_deleted(client, stored, who):
    user = {
        "collaborator": MembershipFactory(project=stored.project, role=Role.COLLABORATOR).user,
        "other_researcher": MembershipFactory(project=stored.project, role=Role.RESEARCHER).user,
        "outsider": UserFactory(),
        "curator": make_curator(),
    }[who]
    client.force_login(user)

    assert client.get(f"/objects/{stored.pk}/delete").status_code == 404
    assert delete(client, stored).status_code == 404
    assert default_storage.exists(stored.storage_key)
    stored.refresh_from_db()
    assert stored.status == DataObject.Status.STORED
    assert not AuditEvent.objects.exists()


def test_anonymous_is_sent_to_log_in(client, stored):
    response = delete(client, stored)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert default_storage.exists(stored.storage_key)


def test_deleting_twice_answers_404_the_second_time(client, stored):
    client.force_login(stored.uploaded_by)

    first = delete(client, stored)
    second = delete(client, stored)

    assert (first.status_code, second.status_code) == (302, 404)
    assert AuditEvent.objects.count() == 1


def test_an_upload_in_flight_cannot_be_deleted(client, stored):
    DataObject.objects.filter(pk=stored.pk).update(status=DataObject.Status.UPLOADING)
    client.force_login(stored.uploaded_by)

    assert delete(client, stored).status_code == 404
    assert default_storage.exists(stored.storage_key)


def test_storage_failure_changes_nothing(client, stored, settings):
    """The bucket refuses (here: it does not exist): the object stays, nothing is audited."""
    settings.AWS_STORAGE_BUCKET_NAME = "kura-no-such-bucket"
    client.force_login(stored.uploaded_by)

    response = delete(client, stored)

    assert response.status_code == 503
    assert "Nothing was changed" in response.content.decode()
    stored.refresh_from_db()
    assert stored.status == DataObject.Status.STORED
    assert not AuditEvent.objects.exists()


def test_service_refuses_a_user_without_the_right(stored):
    with pytest.raises(Http404):
        deletion.data_object_delete(actor=UserFactory(), data_object_id=stored.pk)
    with pytest.raises(Http404):
        deletion.data_object_delete(actor=stored.uploaded_by, data_object_id="garbage")
    stored.refresh_from_db()
    assert stored.status == DataObject.Status.STORED


def test_store_error_propagates_from_the_service(stored, settings):
    settings.AWS_STORAGE_BUCKET_NAME = "kura-no-such-bucket"

    with pytest.raises(StoreError):
        deletion.data_object_delete(actor=stored.uploaded_by, data_object_id=stored.pk)
    assert DataObject.objects.get(pk=stored.pk).status == DataObject.Status.STORED


# --- Pending tier requests of a deleted object ------------------------------------------------


@pytest.fixture
def roles():
    from tests.repository.test_tiers import ProjectWithRoles

    return ProjectWithRoles()


def ask_public(actor, objects) -> TierChangeRequest:
    return tiers.tier_change_request(
        actor=actor, data_object_ids=[o.pk for o in objects], tier=Tier.PUBLIC, reason="Paper."
    ).request


def test_a_deleted_object_leaves_its_pending_request_and_the_rest_can_be_approved(client, roles):
    gone, kept = roles.object(original_filename="gone.tiff"), roles.object()
    tier_request = ask_public(roles.uploader, [gone, kept])
    client.force_login(roles.uploader)

    assert delete(client, gone, REMOTE_ADDR="192.0.2.7").status_code == 302

    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.PENDING
    assert list(tier_request.data_objects.all()) == [kept]
    event = AuditEvent.objects.get(action=AuditEvent.Action.TIER_DECIDED)
    assert (event.data_object, event.actor, event.ip_address) == (gone, roles.uploader, "192.0.2.7")
    assert event.before == {"request": tier_request.pk, "status": RequestStatus.PENDING}
    assert event.after["status"] == RequestStatus.CANCELLED
    assert "gone.tiff" in event.detail and "deleted" in event.detail

    client.force_login(make_curator())
    approved = client.post(f"/review/{tier_request.pk}/", {"decision": "approve"})

    assert approved.status_code == 302
    kept.refresh_from_db()
    assert kept.tier == Tier.PUBLIC
    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.APPROVED


def test_a_request_for_the_deleted_object_alone_is_cancelled(roles):
    gone = roles.object(original_filename="gone.tiff")
    tier_request = ask_public(roles.uploader, [gone])
    elsewhere = ask_public(roles.uploader, [roles.object()])
    decided = ask_public(roles.uploader, [roles.object()])
    tiers.tier_request_decide(
        actor=make_curator(), tier_request_id=decided.pk, approve=False, comment="No."
    )
    decided.data_objects.add(gone)  # a decided request is history: deleting leaves it alone

    deletion.data_object_delete(actor=roles.pm, data_object_id=gone.pk, ip_address="192.0.2.8")

    tier_request.refresh_from_db()
    assert (tier_request.status, tier_request.decided_by) == (RequestStatus.CANCELLED, roles.pm)
    assert "gone.tiff" in tier_request.decision_comment
    assert list(tier_request.data_objects.all()) == [gone]  # what it asked for stays on record
    event = AuditEvent.objects.filter(action=AuditEvent.Action.TIER_DECIDED).latest("pk")
    assert (event.data_object, event.after["status"]) == (gone, RequestStatus.CANCELLED)
    statuses = dict(TierChangeRequest.objects.values_list("pk", "status"))
    assert statuses[elsewhere.pk] == RequestStatus.PENDING
    assert statuses[decided.pk] == RequestStatus.REJECTED
    assert set(decided.data_objects.all()) >= {gone}
