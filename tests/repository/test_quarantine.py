"""Clearing a quarantine: a curator asks, Kura reads the stored bytes again, and only bytes
that match the recorded checksums are released."""

import datetime
import os
import threading

import pytest
from celery import signals
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository.models import AuditEvent, DataObject, FixityCheck
from repository.preservation import quarantine
from repository.preservation.checksums import data_object_checksum_verify, data_object_fixity_check
from repository.preservation.fixity import hashing_lock
from repository.preservation.housekeeping import (
    StalledReverification,
    quarantine_reverifications_stalled,
)
from repository.preservation.object_store import StoreError, object_store
from repository.preservation.quarantine import ReverifyOutcome
from repository.tasks import checksum_requeue_task, quarantine_reverify_task
from tests.factories import (
    MembershipFactory,
    UserFactory,
    make_curator,
    make_program_officer,
    queued_work,
)

from .stored_objects import digests, overwrite_behind_kuras_back, snapshot, store_object

pytestmark = pytest.mark.django_db

IP = "192.0.2.7"
COMMENT = "Storage vendor restored the volume from the 3 May snapshot; replica compared."


def damaged(data: bytes) -> bytes:
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0xFF
    return bytes(tampered)


@pytest.fixture
def curator():
    return make_curator(email="curator@example.org", username="curator-ito")


@pytest.fixture
def quarantined(django_capture_on_commit_callbacks, mailoutbox):
    """A verified object whose bytes were damaged behind Kura's back and caught by a fixity
    check, so it is quarantined; ``data`` are its original bytes. Its e-mail is dropped."""
    data = os.urandom(50_000)
    data_object = store_object(data, tier=Tier.SHARED)
    data_object_checksum_verify(data_object_id=data_object.pk)
    overwrite_behind_kuras_back(data_object.storage_key, damaged(data))
    with django_capture_on_commit_callbacks(execute=True):
        check = data_object_fixity_check(data_object_id=data_object.pk)
    assert check.outcome == FixityCheck.Outcome.MISMATCH
    data_object.refresh_from_db()
    assert data_object.is_quarantined
    mailoutbox.clear()
    data_object.original_data = data
    return data_object


def pm_of(data_object: DataObject):
    return data_object.project.memberships.get(role=Role.PM).user


def request_reverify(data_object, curator, django_capture_on_commit_callbacks, comment=COMMENT):
    """The curator's request as the view makes it; the queued task is not sent (the test
    runs it with :func:`run_task`, or a real worker does in the integration test)."""
    with django_capture_on_commit_callbacks() as callbacks:
        quarantine.quarantine_reverify_request(
            actor=curator, data_object_id=data_object.pk, comment=comment, ip_address=IP
        )
    assert len(queued_work(callbacks)) == 1


def run_task(data_object, curator, django_capture_on_commit_callbacks, comment=COMMENT):
    """The worker's side, in this process (e-mails sent as on commit)."""
    with django_capture_on_commit_callbacks(execute=True):
        result = quarantine_reverify_task.apply(args=[data_object.pk, curator.pk, comment, IP])
    assert result.successful(), result.traceback
    return result.result["outcome"]


# --- The page -----------------------------------------------------------------------------


def test_a_curator_sees_the_reason_the_fixity_history_and_the_form(client, quarantined, curator):
    client.force_login(curator)

    response = client.get(f"/objects/{quarantined.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "no longer match the checksums recorded" in page  # the reason
    assert 'id="quarantine-form"' in page
    assert f'action="/objects/{quarantined.pk}/quarantine"' in page
    assert "Re-verify and clear" in page
    assert [c.outcome for c in response.context["fixity_checks"]] == ["mismatch", "match"]
    assert response.context["quarantine"]["last_check"].outcome == FixityCheck.Outcome.MISMATCH


@pytest.mark.parametrize("who", ["pm", "uploader", "outsider", "program_officer", "anonymous"])
def test_others_get_no_form(client, quarantined, who):
    user = {
        "pm": lambda: pm_of(quarantined),
        "uploader": lambda: quarantined.uploaded_by,
        "outsider": UserFactory,
        "program_officer": make_program_officer,
        "anonymous": lambda: None,
    }[who]()
    if user is not None:
        client.force_login(user)

    response = client.get(f"/objects/{quarantined.pk}/")

    assert response.status_code in (200, 404)
    assert b"quarantine-form" not in response.content


def test_an_unquarantined_object_shows_a_curator_no_form(client, curator):
    data_object = store_object(b"fine bytes")
    data_object_checksum_verify(data_object_id=data_object.pk)
    client.force_login(curator)

    response = client.get(f"/objects/{data_object.pk}/")

    assert response.context["quarantine"] is None
    assert b"quarantine-form" not in response.content


# --- Asking for it ------------------------------------------------------------------------


def test_posting_the_form_marks_the_object_pending_and_queues_one_task(
    client, quarantined, curator, django_capture_on_commit_callbacks
):
    client.force_login(curator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            f"/objects/{quarantined.pk}/quarantine", {"comment": COMMENT}, REMOTE_ADDR=IP
        )

    assert response.status_code == 302
    assert response["Location"] == f"/objects/{quarantined.pk}/"
    assert len(queued_work(callbacks)) == 1
    quarantined.refresh_from_db()
    assert quarantined.is_quarantined
    assert quarantined.checksum_state == DataObject.ChecksumState.VERIFYING
    page = client.get(f"/objects/{quarantined.pk}/")
    assert page.context["quarantine"]["pending"] is True
    assert b'id="quarantine-pending"' in page.content
    assert b"quarantine-form" not in page.content
    assert "Kura is reading the file again" in str(list(page.context["messages"])[0])


@pytest.mark.parametrize("comment", ["", "   \n "])
def test_no_comment_is_a_form_error_and_changes_nothing(
    client, quarantined, curator, comment, django_capture_on_commit_callbacks
):
    client.force_login(curator)
    before = snapshot(quarantined)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/objects/{quarantined.pk}/quarantine", {"comment": comment})

    assert response.status_code == 400
    assert response.context["quarantine"]["form"].errors["comment"]
    assert b"field-errors" in response.content
    assert callbacks == []
    assert snapshot(quarantined) == before


def test_an_object_that_is_not_quarantined_is_a_form_error(
    client, curator, django_capture_on_commit_callbacks
):
    data_object = store_object(b"fine bytes")
    data_object_checksum_verify(data_object_id=data_object.pk)
    before = snapshot(data_object)
    client.force_login(curator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/objects/{data_object.pk}/quarantine", {"comment": COMMENT})

    assert response.status_code == 400
    assert "This object is not quarantined." in response.content.decode()
    assert callbacks == []
    assert snapshot(data_object) == before


def test_asking_twice_while_pending_is_a_form_error(
    client, quarantined, curator, django_capture_on_commit_callbacks
):
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    before = snapshot(quarantined)
    client.force_login(curator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/objects/{quarantined.pk}/quarantine", {"comment": COMMENT})

    assert response.status_code == 400
    assert "already pending" in response.content.decode()
    assert callbacks == []
    assert snapshot(quarantined) == before


def test_a_deleted_object_is_not_cleared(client, quarantined, curator):
    DataObject.objects.filter(pk=quarantined.pk).update(status=DataObject.Status.DELETED)
    client.force_login(curator)

    response = client.post(f"/objects/{quarantined.pk}/quarantine", {"comment": COMMENT})

    assert response.status_code == 404  # a deleted object is seen by nobody, curators included
    quarantined.refresh_from_db()
    assert quarantined.checksum_state == DataObject.ChecksumState.FAILED


def test_unknown_objects_and_other_methods(client, curator, quarantined):
    client.force_login(curator)

    assert client.post("/objects/999999999/quarantine", {"comment": COMMENT}).status_code == 404
    assert client.get(f"/objects/{quarantined.pk}/quarantine").status_code == 405


# --- Who may ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("pm", 403),  # stewards see the object, but only curators clear
        ("data_manager", 403),
        ("uploader", 403),
        ("collaborator", 403),
        ("outsider", 404),  # the record's metadata is closed: they cannot see the object
        ("program_officer", 404),
    ],
)
def test_only_curators_may_ask(
    client, quarantined, who, status, django_capture_on_commit_callbacks
):
    project = quarantined.project
    user = {
        "pm": lambda: pm_of(quarantined),
        "data_manager": lambda: MembershipFactory(project=project, role=Role.DATA_MANAGER).user,
        "uploader": lambda: quarantined.uploaded_by,
        "collaborator": lambda: MembershipFactory(project=project, role=Role.COLLABORATOR).user,
        "outsider": UserFactory,
        "program_officer": make_program_officer,
    }[who]()
    before = snapshot(quarantined)
    client.force_login(user)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/objects/{quarantined.pk}/quarantine", {"comment": COMMENT})

    assert response.status_code == status
    assert callbacks == []
    assert snapshot(quarantined) == before
    with pytest.raises(PermissionDenied):
        quarantine.quarantine_reverify_request(
            actor=user, data_object_id=quarantined.pk, comment=COMMENT
        )
    assert snapshot(quarantined) == before


def test_anonymous_is_sent_to_log_in_and_nothing_changes(client, quarantined):
    before = snapshot(quarantined)

    response = client.post(f"/objects/{quarantined.pk}/quarantine", {"comment": COMMENT})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert snapshot(quarantined) == before


def test_a_superuser_may_ask(client, quarantined, django_capture_on_commit_callbacks):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/objects/{quarantined.pk}/quarantine", {"comment": COMMENT})

    assert response.status_code == 302
    assert len(queued_work(callbacks)) == 1


# --- Re-verifying -------------------------------------------------------------------------


def test_restored_bytes_clear_the_quarantine_audit_and_mail(
    quarantined, curator, mailoutbox, django_capture_on_commit_callbacks
):
    overwrite_behind_kuras_back(quarantined.storage_key, quarantined.original_data)
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)

    outcome = run_task(quarantined, curator, django_capture_on_commit_callbacks)

    assert outcome == ReverifyOutcome.CLEARED
    reason = quarantined.quarantine_reason
    quarantined.refresh_from_db()
    assert quarantined.quarantined_at is None
    assert quarantined.quarantine_reason == ""
    assert quarantined.checksum_state == DataObject.ChecksumState.VERIFIED
    assert quarantined.checksum_progress == 100
    check = quarantined.fixity_checks.first()
    assert check.outcome == FixityCheck.Outcome.MATCH
    assert (check.sha256, check.md5, check.size) == (
        *digests(quarantined.original_data),
        len(quarantined.original_data),
    )
    assert "curator's request" in check.detail
    assert quarantined.last_fixity_at == check.checked_at
    event = AuditEvent.objects.get(action=AuditEvent.Action.QUARANTINE_CLEARED)
    assert (event.actor, event.data_object, event.project_id) == (
        curator,
        quarantined,
        quarantined.project_id,
    )
    assert event.ip_address == IP
    assert event.detail == COMMENT
    assert event.before == {"quarantined": True, "quarantine_reason": reason}
    assert event.after == {"quarantined": False, "checksum_state": "verified"}
    (mail,) = mailoutbox
    assert sorted(mail.to) == sorted([quarantined.uploaded_by.email, pm_of(quarantined).email])
    assert "Quarantine cleared" in mail.subject and " / " in mail.subject  # ja / en
    japanese, english = mail.body.split("\n\n-----\n\n")
    for part in (japanese, english):
        assert COMMENT in part
        assert curator.display_name in part
        assert f"http://localhost:8000/objects/{quarantined.pk}/" in part


def test_a_checksum_recorded_wrongly_and_corrected_clears(
    curator, mailoutbox, django_capture_on_commit_callbacks
):
    """A fixity failure that was the database's fault, not the file's."""
    data = os.urandom(10_000)
    data_object = store_object(data)
    data_object_checksum_verify(data_object_id=data_object.pk)
    DataObject.objects.filter(pk=data_object.pk).update(sha256="0" * 64)
    with django_capture_on_commit_callbacks(execute=True):
        data_object_fixity_check(data_object_id=data_object.pk)
    DataObject.objects.filter(pk=data_object.pk).update(sha256=digests(data)[0])
    request_reverify(data_object, curator, django_capture_on_commit_callbacks)

    assert run_task(data_object, curator, django_capture_on_commit_callbacks) == "cleared"

    data_object.refresh_from_db()
    assert not data_object.is_quarantined


def test_bytes_that_really_differ_stay_quarantined_and_the_curator_is_told(
    client, quarantined, curator, mailoutbox, django_capture_on_commit_callbacks
):
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    reason = quarantined.quarantine_reason

    outcome = run_task(quarantined, curator, django_capture_on_commit_callbacks)

    assert outcome == ReverifyOutcome.STILL_QUARANTINED
    quarantined.refresh_from_db()
    assert quarantined.is_quarantined
    assert quarantined.quarantine_reason == reason
    assert quarantined.checksum_state == DataObject.ChecksumState.FAILED
    check = quarantined.fixity_checks.first()
    assert check.outcome == FixityCheck.Outcome.MISMATCH
    assert check.sha256 == digests(damaged(quarantined.original_data))[0]
    assert check.detail.startswith("Re-verified at a curator's request: Fixity check failed")
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.QUARANTINE_CLEARED).exists()
    # The trail says who looked again, from where, and that the bytes are still corrupt.
    event = AuditEvent.objects.filter(
        data_object=quarantined, action=AuditEvent.Action.FIXITY_FAILED
    ).latest("pk")
    assert event.actor == curator
    assert event.ip_address == IP
    assert event.after["checksum_state"] == DataObject.ChecksumState.FAILED
    assert event.detail.startswith("Re-verified at a curator's request: Fixity check failed")
    assert COMMENT in event.detail
    (mail,) = mailoutbox
    assert sorted(mail.to) == sorted([curator.email, pm_of(quarantined).email])
    assert "Still quarantined" in mail.subject
    assert "no longer match" in mail.body
    client.force_login(curator)
    page = client.get(f"/objects/{quarantined.pk}/")
    assert page.context["quarantine"]["last_check"] == check
    assert page.context["quarantine"]["pending"] is False
    assert b'id="quarantine-form"' in page.content  # the curator may look again later
    assert "Re-verified at a curator&#x27;s request: Fixity check failed" in page.content.decode()


def test_a_file_gone_from_the_storage_stays_quarantined(
    quarantined, curator, mailoutbox, django_capture_on_commit_callbacks
):
    object_store().delete(quarantined.storage_key)
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)

    assert run_task(quarantined, curator, django_capture_on_commit_callbacks) == (
        "still_quarantined"
    )

    quarantined.refresh_from_db()
    assert quarantined.is_quarantined
    assert "missing" in quarantined.fixity_checks.first().detail
    assert len(mailoutbox) == 1


def test_an_upload_that_never_was_the_uploaders_bytes_is_not_cleared(
    curator, django_capture_on_commit_callbacks
):
    """Failed at upload (the uploader's SHA-256 differs): the recorded digests are those of
    the stored bytes, so they match again, but the bytes are still not the uploader's."""
    data_object = store_object(b"what arrived", client_sha256="ab" * 32)
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    data_object.refresh_from_db()
    assert data_object.is_quarantined
    request_reverify(data_object, curator, django_capture_on_commit_callbacks)

    assert run_task(data_object, curator, django_capture_on_commit_callbacks) == (
        "still_quarantined"
    )

    data_object.refresh_from_db()
    assert data_object.is_quarantined
    assert "SHA-256 mismatch" in data_object.fixity_checks.first().detail


@pytest.mark.parametrize("intact", [True, False], ids=["cleared", "still-quarantined"])
def test_running_the_task_twice_changes_nothing_the_second_time(
    quarantined, curator, mailoutbox, intact, django_capture_on_commit_callbacks
):
    if intact:
        overwrite_behind_kuras_back(quarantined.storage_key, quarantined.original_data)
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    run_task(quarantined, curator, django_capture_on_commit_callbacks)
    after_first = snapshot(quarantined)
    mails = len(mailoutbox)

    assert run_task(quarantined, curator, django_capture_on_commit_callbacks) == "nothing_to_do"

    assert snapshot(quarantined) == after_first
    assert len(mailoutbox) == mails == 1


def test_a_task_without_a_request_does_nothing(
    quarantined, curator, django_capture_on_commit_callbacks
):
    """Only a pending request is served: a stray message cannot clear anything."""
    overwrite_behind_kuras_back(quarantined.storage_key, quarantined.original_data)
    before = snapshot(quarantined)

    assert run_task(quarantined, curator, django_capture_on_commit_callbacks) == "nothing_to_do"
    assert quarantine_reverify_task.apply(args=[0, curator.pk, COMMENT]).result == {
        "object_id": 0,
        "outcome": "nothing_to_do",
    }

    assert snapshot(quarantined) == before


def test_the_upload_checksum_task_leaves_a_pending_re_verification_alone(
    quarantined, curator, django_capture_on_commit_callbacks
):
    """Both read "verifying"; only the curator's re-verification may serve this one, or the
    damaged bytes' digests would be recorded as the right ones."""
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    before = snapshot(quarantined)

    data_object_checksum_verify(data_object_id=quarantined.pk)

    assert snapshot(quarantined) == before


# --- Storage failures ---------------------------------------------------------------------


def unreachable_bucket():
    return override_settings(AWS_STORAGE_BUCKET_NAME="kura-no-such-bucket")


def test_a_storage_error_leaves_the_request_pending_for_the_retry(
    quarantined, curator, django_capture_on_commit_callbacks
):
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    before = snapshot(quarantined)

    with unreachable_bucket(), pytest.raises(StoreError):
        quarantine.data_object_quarantine_reverify(
            data_object_id=quarantined.pk, curator_id=curator.pk, comment=COMMENT
        )

    assert snapshot(quarantined) == before
    assert quarantine.quarantine_reverify_pending(quarantined)


@pytest.fixture
def retries():
    """The error behind every retry the task asks for."""
    seen: list = []

    def record(sender=None, reason=None, **kwargs):
        seen.append(reason.exc)

    signals.task_retry.connect(record, weak=False)
    yield seen
    signals.task_retry.disconnect(record)


def test_a_storage_error_that_persists_ends_the_request_with_an_error_check(
    client, quarantined, curator, retries, django_capture_on_commit_callbacks
):
    assert quarantine_reverify_task.autoretry_for == (StoreError,)
    assert quarantine_reverify_task.acks_late is True
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)

    with unreachable_bucket():
        result = quarantine_reverify_task.apply(args=[quarantined.pk, curator.pk, COMMENT, IP])

    assert result.successful(), result.traceback
    assert result.result["outcome"] == "storage_error"
    assert len(retries) == quarantine_reverify_task.max_retries
    assert all(isinstance(error, StoreError) for error in retries)
    quarantined.refresh_from_db()
    assert quarantined.is_quarantined
    assert quarantined.checksum_state == DataObject.ChecksumState.FAILED
    assert quarantined.fixity_checks.first().outcome == FixityCheck.Outcome.ERROR
    client.force_login(curator)
    page = client.get(f"/objects/{quarantined.pk}/")
    assert b'id="quarantine-form"' in page.content  # the curator can ask again


# --- Downloads ----------------------------------------------------------------------------


def test_the_file_downloads_again_after_clearing_and_not_before(
    client, quarantined, curator, django_capture_on_commit_callbacks
):
    downloads = f"/objects/{quarantined.pk}/download"
    client.force_login(quarantined.uploaded_by)
    assert client.get(downloads).status_code == 404
    overwrite_behind_kuras_back(quarantined.storage_key, quarantined.original_data)
    assert client.get(downloads).status_code == 404  # restored bytes alone release nothing

    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    assert client.get(downloads).status_code == 404  # nor does the pending request
    run_task(quarantined, curator, django_capture_on_commit_callbacks)

    assert client.get(downloads).status_code == 302


def test_the_file_stays_withheld_when_the_bytes_still_differ(
    client, quarantined, curator, django_capture_on_commit_callbacks
):
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    run_task(quarantined, curator, django_capture_on_commit_callbacks)
    client.force_login(quarantined.uploaded_by)

    assert client.get(f"/objects/{quarantined.pk}/download").status_code == 404


def test_the_cleared_event_is_on_the_audit_trail_page(
    client, quarantined, curator, django_capture_on_commit_callbacks
):
    overwrite_behind_kuras_back(quarantined.storage_key, quarantined.original_data)
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    run_task(quarantined, curator, django_capture_on_commit_callbacks)
    client.force_login(pm_of(quarantined))

    page = client.get(f"/projects/{quarantined.project_id}/audit/")

    assert page.status_code == 200
    assert COMMENT in page.content.decode()


# --- A lost task ----------------------------------------------------------------------------


def test_the_request_is_on_the_audit_trail(
    quarantined, curator, django_capture_on_commit_callbacks
):
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    event = AuditEvent.objects.get(
        data_object=quarantined, action=AuditEvent.Action.QUARANTINE_REVERIFY_REQUESTED
    )
    assert (event.actor, event.ip_address, event.detail) == (curator, IP, COMMENT)
    assert event.after == {"checksum_state": "verifying"}


def _later(minutes: int):
    return timezone.now() + datetime.timedelta(minutes=minutes)


def test_a_lost_reverification_is_queued_again_with_the_curators_request(
    quarantined, curator, django_capture_on_commit_callbacks, settings, monkeypatch
):
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    wait = settings.KURA_CHECKSUM_REQUEUE_AFTER_MINUTES
    assert quarantine_reverifications_stalled(now=_later(wait - 1)) == []
    stalled = quarantine_reverifications_stalled(now=_later(wait + 1))
    assert stalled == [StalledReverification(quarantined.pk, curator.pk, COMMENT, IP)]

    queued = []
    monkeypatch.setattr(quarantine_reverify_task, "delay", lambda *args: queued.append(args))
    moment = _later(wait + 1)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    assert checksum_requeue_task.apply().result["reverifications"] == 1
    assert queued == [(quarantined.pk, curator.pk, COMMENT, IP)]


def test_a_reverification_a_worker_is_running_is_not_queued_again(
    quarantined, curator, django_capture_on_commit_callbacks, settings
):
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    holding, release = threading.Event(), threading.Event()

    def worker():  # another worker, on its own database connection, reading the object
        try:
            with hashing_lock(quarantined.pk) as locked:
                assert locked
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert holding.wait(10)
        later = _later(settings.KURA_CHECKSUM_REQUEUE_AFTER_MINUTES + 1)
        assert quarantine_reverifications_stalled(now=later) == []
    finally:
        release.set()
        thread.join(10)


def test_a_finished_reverification_is_not_queued_again(
    quarantined, curator, django_capture_on_commit_callbacks, settings
):
    request_reverify(quarantined, curator, django_capture_on_commit_callbacks)
    run_task(quarantined, curator, django_capture_on_commit_callbacks)  # still damaged
    later = _later(settings.KURA_CHECKSUM_REQUEUE_AFTER_MINUTES + 1)
    assert quarantine_reverifications_stalled(now=later) == []


def test_a_request_made_while_the_broker_is_away_is_kept_and_sent_by_the_requeue(
    quarantined, curator, django_capture_on_commit_callbacks
):
    """The curator's request commits; the broker being away does not turn it into an error,
    and beat's next requeue sends it without waiting KURA_CHECKSUM_REQUEUE_AFTER_MINUTES."""
    from tests.faults.test_checksum_faults import broker

    with broker("redis://127.0.0.1:9/0"), django_capture_on_commit_callbacks(execute=True):
        quarantine.quarantine_reverify_request(
            actor=curator, data_object_id=quarantined.pk, comment=COMMENT, ip_address=IP
        )

    quarantined.refresh_from_db()
    assert quarantined.checksum_state == DataObject.ChecksumState.VERIFYING
    assert quarantined.checksum_unsent is True
    (stalled,) = quarantine_reverifications_stalled(now=timezone.now())
    assert stalled == StalledReverification(quarantined.pk, curator.pk, COMMENT, IP)
