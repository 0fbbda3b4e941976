"""Clearing a quarantine end to end: the curator's form, Redis, a real Celery worker, S3."""

import os

import pytest

from repository.models import AuditEvent, DataObject, FixityCheck
from repository.preservation.checksums import data_object_checksum_verify, data_object_fixity_check
from repository.tasks import quarantine_reverify_task
from tests.factories import make_curator
from tests.repository.stored_objects import overwrite_behind_kuras_back, store_object

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_curator_clears_a_quarantine_through_a_real_worker(client, celery_worker_process):
    data = os.urandom(9 * 1024**2 + 17)  # more than one chunk
    data_object = store_object(data)
    data_object_checksum_verify(data_object_id=data_object.pk)
    overwrite_behind_kuras_back(data_object.storage_key, data[:-1] + b"?")
    assert data_object_fixity_check(data_object_id=data_object.pk).outcome == "mismatch"
    overwrite_behind_kuras_back(data_object.storage_key, data)  # restored from a replica
    curator = make_curator()
    downloads = f"/objects/{data_object.pk}/download"
    client.force_login(data_object.uploaded_by)
    assert client.get(downloads).status_code == 404

    client.force_login(curator)
    response = client.post(
        f"/objects/{data_object.pk}/quarantine",
        {"comment": "Restored from the replica."},
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 302
    # The worker runs one task at a time in queue order: when this one is answered, the
    # one the form queued has run, and this second run found nothing left to do.
    again = quarantine_reverify_task.apply_async(
        (data_object.pk, curator.pk, "again"), ignore_result=False
    ).get(timeout=120)

    assert again == {"object_id": data_object.pk, "outcome": "nothing_to_do"}
    data_object.refresh_from_db()
    assert data_object.quarantined_at is None
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.fixity_checks.first().outcome == FixityCheck.Outcome.MATCH
    event = AuditEvent.objects.get(action=AuditEvent.Action.QUARANTINE_CLEARED)
    assert (event.actor, event.ip_address, event.detail) == (
        curator,
        "198.51.100.4",
        "Restored from the replica.",
    )
    client.force_login(data_object.uploaded_by)
    assert client.get(downloads).status_code == 302
