"""schemathesis against the live OpenAPI document, signed in as a PM with an API token:
every operation, generated and example inputs, no server error and no response that breaks
the document (status codes, content types, bodies, headers)."""

import datetime

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Role
from accounts.tokens import api_token_create
from core.vocabularies import MetadataAccess, Tier
from repository.models import AccessRequest, AuditEvent, DataObject, TierChangeRequest
from repository.publishing.versions import dataset_version_publish
from tests.dmp.complete_records import complete_record
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    UserFactory,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(autouse=True)
def same_connection():
    """Requests are served in-process by Django's WSGI handler, inside the test's
    transaction: as Django's test client does, keep the handler from closing the database
    connection at the end of each request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def pm_token(db) -> str:
    """A PM's token, and a project with records, objects in several states and requests."""
    pm = MembershipFactory(role=Role.PM)
    project, user = pm.project, pm.user
    record = DmpRecordFactory(
        project=project, access_rights=Tier.SHARED, metadata_access=MetadataAccess.OPEN
    )
    objects = [
        DataObjectFactory(project=project, record=record, uploaded_by=user, tier=tier)
        for tier in (Tier.PUBLIC, Tier.SHARED, Tier.NON_SHARED)
    ]
    DataObjectFactory(
        project=project, uploaded_by=user, checksum_state=DataObject.ChecksumState.PENDING
    )
    request = TierChangeRequest.objects.create(
        project=project, requested_by=user, requested_tier=Tier.PUBLIC, reason="paper"
    )
    request.data_objects.set(objects[1:2])
    AccessRequest.objects.create(record=record, requester=UserFactory(), purpose="re-analysis")
    AuditEvent.objects.create(
        action=AuditEvent.Action.DOWNLOAD, project=project, data_object=objects[1], actor=user
    )
    _token, secret = api_token_create(user=user, name="fuzz")
    return secret


# The document as the running application serves it (no database is needed to build it).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_document(case, pm_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {pm_token}"}, checks=CHECKS)


@pytest.mark.django_db
def test_published_versions_conform_to_the_document():
    """The versions API's answers that a fuzzer seldom reaches (a published record, its
    next version, its withdrawal), each checked against the document."""
    pm = MembershipFactory(role=Role.PM)
    record = complete_record(pm.project, metadata_access=MetadataAccess.OPEN)
    verified = {"checksum_state": DataObject.ChecksumState.VERIFIED, "sha256": "ab" * 32}
    DataObjectFactory(project=pm.project, record=record, tier=Tier.PUBLIC, **verified)
    dataset_version_publish(actor=pm.user, record_id=record.pk)
    DataObjectFactory(
        project=pm.project,
        record=record,
        tier=Tier.EMBARGOED,
        available_date=datetime.date(2099, 1, 1),
        **verified,
    )
    _token, secret = api_token_create(user=pm.user, name="versions")
    signed_in = {"Authorization": f"Bearer {secret}"}
    ids = {"record_id": record.pk}
    versions = "/api/v1/records/{record_id}/versions/"
    version = "/api/v1/records/{record_id}/versions/{number}/"
    for path, method, parameters, body, headers, expected in (
        (versions, "GET", ids, None, {}, 200),
        (version, "GET", {**ids, "number": 1}, None, {}, 200),
        (versions, "POST", ids, None, signed_in, 201),
        (versions, "POST", ids, None, signed_in, 400),  # nothing changed since
        (version, "GET", {**ids, "number": 3}, None, {}, 404),
        ("/api/v1/records/{record_id}/withdraw", "POST", ids, {"reason": "x"}, signed_in, 200),
        (version, "GET", {**ids, "number": 2}, None, signed_in, 200),  # the tombstone
        (versions, "GET", ids, None, {}, 200),
    ):
        extra = {} if body is None else {"body": body, "media_type": "application/json"}
        case = schema[path][method].Case(path_parameters=parameters, **extra)
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == expected, (method, path, response.text)
