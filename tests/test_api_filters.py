"""API list filters never tell whether a row exists: a hidden id and a missing one answer
alike (200, empty list) on every filter of a related row on every list endpoint."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.models import AuditEvent
from tests.factories import (
    AuditEventFactory,
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    TierChangeRequestFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MISSING = 987_654_321


@pytest.fixture
def hidden():
    """A closed project: a PM, a closed record, a non_shared object, a request, an event."""
    pm = MembershipFactory(role=Role.PM)
    record = DmpRecordFactory(project=pm.project, metadata_access=MetadataAccess.CLOSED)
    data_object = DataObjectFactory(
        project=pm.project, record=record, uploaded_by=pm.user, tier=Tier.NON_SHARED
    )
    TierChangeRequestFactory(project=pm.project, requested_by=pm.user, data_objects=[data_object])
    AuditEventFactory(
        actor=pm.user,
        project=pm.project,
        data_object=data_object,
        record=record,
        action=AuditEvent.Action.TIER_CHANGED,
    )
    return {
        "project": pm.project.pk,
        "record": record.pk,
        "data_object": data_object.pk,
        "user": pm.user.pk,
        "institution": pm.project.institution_id,
    }


# (list, filter, which hidden id it takes, who asks)
FILTERS = [
    ("objects", "project", "project", "anonymous"),
    ("objects", "record", "record", "anonymous"),
    ("records", "project", "project", "anonymous"),
    ("projects", "institution", "institution", "anonymous"),
    ("tier-requests", "project", "project", "outsider"),
    ("tier-requests", "requested_by", "user", "outsider"),
    ("access-requests", "record", "record", "outsider"),
    ("access-requests", "requester", "user", "outsider"),
    ("access-requests", "project", "project", "outsider"),
    ("audit-events", "project", "project", "outsider"),
    ("audit-events", "actor", "user", "outsider"),
    ("audit-events", "data_object", "data_object", "outsider"),
    ("audit-events", "record", "record", "outsider"),
]


def ask(who: str, path: str):
    client = APIClient()
    if who == "outsider":
        client.force_authenticate(UserFactory())
    return client.get(f"/api/v1/{path}")


@pytest.mark.parametrize(("endpoint", "name", "kind", "who"), FILTERS)
def test_a_hidden_id_and_a_missing_id_answer_alike(hidden, endpoint, name, kind, who):
    for_hidden = ask(who, f"{endpoint}/?{name}={hidden[kind]}")
    for_missing = ask(who, f"{endpoint}/?{name}={MISSING}")

    assert (for_hidden.status_code, for_missing.status_code) == (200, 200), for_missing.content
    assert for_hidden.json()["results"] == for_missing.json()["results"]
    if endpoint != "projects":  # institutions are public: their projects may be listed
        assert for_hidden.json()["results"] == []


@pytest.mark.parametrize(("endpoint", "name", "kind", "who"), FILTERS)
@pytest.mark.parametrize("value", ["x", "1.5", "-1", str(2**64)])
def test_a_malformed_id_is_a_bad_request_whatever_exists(endpoint, name, kind, who, value):
    response = ask(who, f"{endpoint}/?{name}={value}")

    assert response.status_code == 400, response.content
    assert response.json()["code"] in {"invalid", "min_value", "max_value"}


def test_a_filter_still_finds_what_the_caller_may_see(hidden):
    pm = APIClient()
    from django.contrib.auth import get_user_model

    pm.force_authenticate(get_user_model().objects.get(pk=hidden["user"]))
    for path, key in [
        (f"objects/?project={hidden['project']}", hidden["data_object"]),
        (f"objects/?record={hidden['record']}", hidden["data_object"]),
        (f"records/?project={hidden['project']}", hidden["record"]),
    ]:
        response = pm.get(f"/api/v1/{path}")
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == [key]
    assert pm.get(f"/api/v1/objects/?project={MISSING}").json()["results"] == []
    assert len(pm.get(f"/api/v1/audit-events/?actor={hidden['user']}").json()["results"]) == 1


MOMENT_FILTERS = [
    ("objects", "created_after"),
    ("objects", "created_before"),
    ("records", "updated_after"),
    ("records", "updated_before"),
    ("audit-events", "occurred_after"),
    ("audit-events", "occurred_before"),
]


@pytest.mark.parametrize(("endpoint", "name"), MOMENT_FILTERS)
def test_a_moment_with_any_offset_python_reads_is_a_clean_answer(endpoint, name):
    # Python reads offsets up to ±23:59; PostgreSQL refused those beyond ±15:59 with a 500.
    far_offset = ask("outsider", f"{endpoint}/?{name}=0035-07-17T18:27:36%2B20:18")
    before_year_one = ask("outsider", f"{endpoint}/?{name}=0001-01-01T00:00:00%2B10:00")

    assert far_offset.status_code == 200, far_offset.content
    assert before_year_one.status_code == 400, before_year_one.content
