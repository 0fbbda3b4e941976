"""Second copies of the same bytes: flagged when verified; the uploader keeps or deletes them.

Objects really are in the S3 test bucket and are verified by the checksum service, the way
tests/repository/test_checksums.py does it. The integrity an object page and the API show
("end to end" or "at rest") is tested here too: it is decided at the same verification.
"""

import hashlib
import os

import pytest
from django.test import Client

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.models import AuditEvent, DataObject
from repository.preservation.checksums import data_object_checksum_verify
from repository.preservation.duplicates import duplicate_original_find
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
)

from .stored_objects import snapshot, store_object

pytestmark = pytest.mark.django_db

DATA = os.urandom(300_000)


class Project:
    """A project with a PM, an uploading researcher, a collaborator and one open record."""

    def __init__(self):
        self.project = ProjectFactory()
        self.pm = MembershipFactory(project=self.project, role=Role.PM).user
        self.uploader = MembershipFactory(project=self.project, role=Role.RESEARCHER).user
        self.collaborator = MembershipFactory(project=self.project, role=Role.COLLABORATOR).user
        self.record = DmpRecordFactory(
            project=self.project, metadata_access=MetadataAccess.OPEN, access_rights=Tier.SHARED
        )

    def store(self, data: bytes = DATA, **fields) -> DataObject:
        values = {
            "project": self.project,
            "record": self.record,
            "uploaded_by": self.uploader,
            "tier": Tier.SHARED,
            **fields,
        }
        return store_object(data, **values)

    def verified(self, data: bytes = DATA, **fields) -> DataObject:
        return verify(self.store(data, **fields))


def verify(data_object: DataObject) -> DataObject:
    return data_object_checksum_verify(data_object_id=data_object.pk)


@pytest.fixture
def lab():
    return Project()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Flagged at verification ------------------------------------------------------------------


def test_a_second_copy_in_the_same_record_points_at_the_first(lab):
    first = lab.verified(original_filename="scan.dcm")
    copy = lab.store(original_filename="scan (1).dcm")

    verified = verify(copy)

    assert verified.checksum_state == DataObject.ChecksumState.VERIFIED
    assert verified.duplicate_of == first
    first.refresh_from_db()
    assert first.duplicate_of is None


def test_a_third_copy_points_at_the_first_and_verifying_again_changes_nothing(lab):
    first = lab.verified()
    lab.verified()
    third = lab.verified()

    before = snapshot(third)
    again = verify(third)

    assert again.duplicate_of == first
    assert snapshot(third) == before


@pytest.mark.parametrize(
    "where",
    ["another record of the project", "another project", "different bytes"],
)
def test_only_the_same_bytes_in_the_same_record_are_a_duplicate(lab, where):
    lab.verified()
    if where == "another record of the project":
        other = lab.store(record=DmpRecordFactory(project=lab.project))
    elif where == "another project":
        other = Project().store()
    else:
        other = lab.store(DATA + b"!")

    assert verify(other).duplicate_of is None


def test_without_a_record_any_copy_in_the_project_counts(lab):
    first = lab.verified()

    loose = verify(lab.store(record=None))

    assert loose.duplicate_of == first


@pytest.mark.parametrize("state", ["quarantined", "deleted", "not verified", "abandoned"])
def test_an_earlier_object_that_is_not_sound_and_stored_is_no_original(lab, state):
    earlier = lab.verified()
    changes = {
        "quarantined": {"quarantined_at": earlier.stored_at},
        "deleted": {"status": DataObject.Status.DELETED},
        "not verified": {"checksum_state": DataObject.ChecksumState.PENDING},
        "abandoned": {"status": DataObject.Status.ABANDONED},
    }[state]
    DataObject.objects.filter(pk=earlier.pk).update(**changes)

    assert verify(lab.store()).duplicate_of is None


def test_a_copy_whose_uploader_digest_does_not_match_fails_and_is_not_flagged(lab):
    lab.verified()

    failed = verify(lab.store(client_sha256="0" * 64))

    assert failed.checksum_state == DataObject.ChecksumState.FAILED
    assert failed.duplicate_of is None


# --- The object page: notice, keep both, delete the copy ------------------------------------


@pytest.fixture
def flagged(lab):
    original = lab.verified(original_filename="slide-01.tif")
    copy = lab.verified(original_filename="slide-01 copy.tif")
    assert copy.duplicate_of == original
    return original, copy


@pytest.mark.parametrize("who", ["uploader", "pm"])
def test_the_uploader_and_stewards_are_told_with_a_link_to_the_existing_file(lab, flagged, who):
    original, copy = flagged

    page = client_for(getattr(lab, who)).get(f"/objects/{copy.pk}/").content.decode()

    assert "This file is already in the record as" in page
    assert f'href="/objects/{original.pk}/">slide-01.tif</a>' in page
    assert f'action="/objects/{copy.pk}/keep-duplicate"' in page
    assert f'href="/objects/{copy.pk}/delete"' in page


def test_a_collaborator_who_may_only_read_sees_no_notice(lab, flagged):
    _, copy = flagged

    response = client_for(lab.collaborator).get(f"/objects/{copy.pk}/")

    assert response.status_code == 200
    assert "already in the record" not in response.content.decode()


def test_keeping_both_clears_the_flag_once_and_audits_it(lab, flagged):
    original, copy = flagged
    client = client_for(lab.uploader)

    first = client.post(f"/objects/{copy.pk}/keep-duplicate", REMOTE_ADDR="192.0.2.9")
    second = client.post(f"/objects/{copy.pk}/keep-duplicate")

    assert (first.status_code, first["Location"]) == (302, f"/objects/{copy.pk}/")
    assert second.status_code == 302
    copy.refresh_from_db()
    assert copy.duplicate_of is None
    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.DUPLICATE_KEPT)
    assert (event.data_object, event.actor, event.ip_address) == (copy, lab.uploader, "192.0.2.9")
    assert event.before == {"duplicate_of": original.pk, "sha256": copy.sha256}
    page = client.get(f"/objects/{copy.pk}/").content.decode()
    assert "already in the record" not in page
    assert "is kept as a file of its own" in page


def test_only_those_who_may_edit_keep_both(lab, flagged):
    _, copy = flagged

    response = client_for(lab.collaborator).post(f"/objects/{copy.pk}/keep-duplicate")

    assert response.status_code == 404
    copy.refresh_from_db()
    assert copy.duplicate_of is not None
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DUPLICATE_KEPT).exists()


def test_deleting_the_copy_leaves_the_original(lab, flagged):
    original, copy = flagged

    response = client_for(lab.uploader).post(f"/objects/{copy.pk}/delete")

    assert response.status_code == 302
    assert DataObject.objects.get(pk=copy.pk).status == DataObject.Status.DELETED
    assert DataObject.objects.get(pk=original.pk).status == DataObject.Status.STORED


def test_deleting_the_original_unflags_its_copy(lab, flagged):
    original, copy = flagged

    assert client_for(lab.pm).post(f"/objects/{original.pk}/delete").status_code == 302

    copy.refresh_from_db()
    assert copy.duplicate_of is None
    page = client_for(lab.uploader).get(f"/objects/{copy.pk}/").content.decode()
    assert "already in the record" not in page


# --- Integrity: end to end or at rest -----------------------------------------------------------


@pytest.mark.parametrize(
    ("client_sha256", "integrity", "text"),
    [
        (hashlib.sha256(DATA).hexdigest(), "end_to_end", "Verified end to end"),
        ("", "at_rest", "Verified at rest"),
    ],
)
def test_the_api_and_the_page_say_how_far_verified_reaches(lab, client_sha256, integrity, text):
    data_object = lab.verified(client_sha256=client_sha256)
    client = client_for(lab.collaborator)

    body = client.get(f"/api/v1/objects/{data_object.pk}/").json()
    page = client.get(f"/objects/{data_object.pk}/").content.decode()

    assert (body["checksum_state"], body["integrity"], body["duplicate_of"]) == (
        "verified",
        integrity,
        None,
    )
    assert text in page


@pytest.mark.parametrize("client_sha256", ["", "0" * 64])
def test_no_integrity_is_claimed_before_verification_or_after_a_mismatch(lab, client_sha256):
    pending = lab.store(client_sha256=client_sha256)
    client = client_for(lab.pm)

    assert client.get(f"/api/v1/objects/{pending.pk}/").json()["integrity"] is None
    verify(pending)
    body = client.get(f"/api/v1/objects/{pending.pk}/").json()

    expected = "at_rest" if not client_sha256 else None
    assert body["integrity"] == expected
    page = client.get(f"/objects/{pending.pk}/").content.decode()
    assert ("Verified end to end" in page, "Verified at rest" in page) == (False, not client_sha256)


def test_the_api_names_the_original_of_a_copy(lab, flagged):
    original, copy = flagged

    body = client_for(lab.uploader).get(f"/api/v1/objects/{copy.pk}/").json()
    listed = client_for(lab.uploader).get("/api/v1/objects/").json()["results"]

    assert body["duplicate_of"] == original.pk
    assert {o["id"]: o["duplicate_of"] for o in listed} == {original.pk: None, copy.pk: original.pk}


def test_a_file_hidden_from_the_uploader_is_never_named_as_the_original():
    """Another member's non-shared file with the same bytes: the uploader's copy is not
    flagged, and neither the page nor the API names the hidden file."""
    owner = MembershipFactory(role=Role.RESEARCHER)
    other = MembershipFactory(role=Role.RESEARCHER, project=owner.project)
    record = DmpRecordFactory(project=owner.project)
    sha256 = "ab" * 32
    hidden = DataObjectFactory(
        project=owner.project,
        record=record,
        uploaded_by=owner.user,
        tier=Tier.NON_SHARED,
        sha256=sha256,
        checksum_state=DataObject.ChecksumState.VERIFIED,
    )
    copy = DataObjectFactory(
        project=owner.project,
        record=record,
        uploaded_by=other.user,
        tier=Tier.PUBLIC,
        sha256=sha256,
        checksum_state=DataObject.ChecksumState.VERIFIED,
    )

    assert duplicate_original_find(data_object=copy, sha256=sha256) is None
    DataObject.objects.filter(pk=copy.pk).update(duplicate_of=hidden)  # flagged earlier
    member = Client()
    member.force_login(other.user)
    page = member.get(f"/objects/{copy.pk}/").content.decode()
    api = Client().get(f"/api/v1/objects/{copy.pk}/").json()

    assert hidden.original_filename not in page
    assert api["duplicate_of"] is None
