"""Objects whose bytes really are in the S3 test bucket, for checksum and fixity tests."""

import hashlib
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from accounts.models import Role
from repository.models import DataObject
from repository.preservation import fixity
from tests.factories import DataObjectFactory, MembershipFactory


def store_object(data: bytes, *, filename: str = "sample.bin", **fields) -> DataObject:
    """A stored, not yet verified object uploaded by a researcher of a project with a PM."""
    uploader = MembershipFactory(role=Role.RESEARCHER)
    MembershipFactory(project=uploader.project, role=Role.PM)
    values = {
        "project": uploader.project,
        "uploaded_by": uploader.user,
        "original_filename": filename,
        "content_type": "application/octet-stream",
        "size": len(data),
        "status": DataObject.Status.STORED,
        "checksum_state": DataObject.ChecksumState.PENDING,
        **fields,
    }
    data_object = DataObjectFactory(**values)
    saved = default_storage.save(data_object.storage_key, ContentFile(data))
    assert saved == data_object.storage_key
    return data_object


def overwrite_behind_kuras_back(key: str, data: bytes) -> None:
    """Replace the stored bytes directly in S3, the way a faulty disk or an operator might."""
    client = default_storage.connection.meta.client
    client.put_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key, Body=data)


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).hexdigest()


def snapshot(data_object: DataObject) -> dict:
    """Everything a second run must leave exactly as it was."""
    data_object.refresh_from_db()
    return {
        "fields": {
            name: getattr(data_object, name)
            for name in (
                "status",
                "checksum_state",
                "checksum_progress",
                "sha256",
                "md5",
                "technical_metadata",
                "contains_personal_data",
                "quarantined_at",
                "quarantine_reason",
                "last_fixity_at",
            )
        },
        "fixity_checks": data_object.fixity_checks.count(),
        "audit_events": data_object.audit_events.count(),
    }


@contextmanager
def hashing_elsewhere(data_object: DataObject):
    """Another worker's database session, holding the object's hashing lock meanwhile."""
    settings_dict = connection.settings_dict
    key = (fixity.LOCK_NAMESPACE << 32) | data_object.pk
    with psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"] or None,
        password=settings_dict["PASSWORD"] or None,
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        autocommit=True,
    ) as session:
        session.execute("SELECT pg_advisory_lock(%s)", [key])
        yield
        session.execute("SELECT pg_advisory_unlock(%s)", [key])
