"""Fixtures shared by the repository tests."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory, UserFactory

CONTENT = b"shared bytes " * 100


@pytest.fixture
def shared():
    """A project with a PM and an open record holding one shared object (bytes in S3)."""
    pm = MembershipFactory(role=Role.PM)
    project = pm.project
    record = DmpRecordFactory(
        project=project,
        access_rights=Tier.SHARED,
        metadata_access=MetadataAccess.OPEN,
        title_en="Liver slices",
    )
    data_object = DataObjectFactory(
        project=project, record=record, uploaded_by=pm.user, tier=Tier.SHARED, size=len(CONTENT)
    )
    default_storage.save(data_object.storage_key, ContentFile(CONTENT))
    return {"pm": pm.user, "project": project, "record": record, "object": data_object}


@pytest.fixture
def outsider():
    return UserFactory(email="outsider@example.org")
