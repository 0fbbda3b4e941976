"""Every model has an admin a curator can use; the audit trail cannot be changed there."""

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.models import (
    ApiToken,
    ExternalIdentity,
    Institution,
    Invitation,
    Membership,
    Project,
    User,
)
from dmp.models import DataManagementPlan, DmpRecord, DmpRecordRevision
from repository.models import (
    AccessGrant,
    AccessRequest,
    AuditEvent,
    DataObject,
    DatasetConcept,
    DatasetVersion,
    FixityCheck,
    TierChangeRequest,
    UploadSession,
)
from tests.factories import AuditEventFactory, DataObjectFactory, make_curator

pytestmark = pytest.mark.django_db

KURA_MODELS = [
    User,
    Institution,
    Project,
    Membership,
    DataManagementPlan,
    DmpRecord,
    DmpRecordRevision,
    DataObject,
    UploadSession,
    FixityCheck,
    TierChangeRequest,
    AccessRequest,
    AccessGrant,
    AuditEvent,
    DatasetVersion,
    DatasetConcept,
    ApiToken,
    Invitation,
    ExternalIdentity,
]


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.mark.parametrize("model", KURA_MODELS, ids=lambda m: m.__name__)
def test_every_model_is_registered_and_lists(admin_client, model):
    DataObjectFactory()
    assert model in admin.site._registry

    response = admin_client.get(_changelist(model), {"q": "x"})

    assert response.status_code == 200


@pytest.mark.parametrize("model", [DataObject, DmpRecord, AuditEvent], ids=lambda m: m.__name__)
def test_curators_can_read_but_not_change(client, model):
    DataObjectFactory()
    client.force_login(make_curator())

    assert client.get(_changelist(model)).status_code == 200
    add_url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
    assert client.get(add_url).status_code == 403


def test_audit_events_cannot_be_added_changed_or_deleted_even_by_a_superuser(admin_client):
    event = AuditEventFactory()
    info = "admin:repository_auditevent"

    assert admin_client.get(reverse(f"{info}_add")).status_code == 403
    change = admin_client.post(reverse(f"{info}_change", args=[event.pk]), {"detail": "edited"})
    delete = admin_client.post(reverse(f"{info}_delete", args=[event.pk]), {"post": "yes"})

    assert change.status_code == 403
    assert delete.status_code == 403
    event.refresh_from_db()
    assert event.detail != "edited"
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_trail_refuses_updates_and_deletes_in_code():
    event = AuditEventFactory()

    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(detail="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


@pytest.mark.parametrize(
    "model", [AuditEvent, AccessGrant, AccessRequest], ids=lambda m: m.__name__
)
def test_audit_and_grant_admins_offer_no_bulk_delete(admin_client, model):
    event = AuditEventFactory()
    model_admin = admin.site._registry[model]
    request = admin_client.get(_changelist(model)).wsgi_request

    response = admin_client.post(
        _changelist(AuditEvent),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )

    assert model_admin.get_actions(request) == {}
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert response.status_code in (200, 302, 403)
    assert AuditEvent.objects.filter(pk=event.pk).exists()
