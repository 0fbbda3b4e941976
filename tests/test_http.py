"""The client address recorded in the audit trail: REMOTE_ADDR unless proxies are trusted."""

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings

from accounts.models import Role
from core.http import client_ip
from core.vocabularies import Tier
from repository.models import AuditEvent, DataObject
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory

factory = RequestFactory()


def _request(**meta):
    return factory.get("/", REMOTE_ADDR="10.0.0.5", **meta)


def _proxies(n: int):
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": n})


def test_without_trusted_proxies_a_forwarded_header_is_ignored():
    assert client_ip(_request(HTTP_X_FORWARDED_FOR="198.51.100.7")) == "10.0.0.5"


@pytest.mark.parametrize(
    ("proxies", "header", "expected"),
    [
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "203.0.113.9, 198.51.100.7", "198.51.100.7"),  # the client forged the first hop
        (2, "203.0.113.9, 198.51.100.7", "203.0.113.9"),
        (1, "not-an-address", "10.0.0.5"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_behind_trusted_proxies_the_outermost_trusted_hop_counts(proxies, header, expected):
    with _proxies(proxies):
        assert client_ip(_request(HTTP_X_FORWARDED_FOR=header)) == expected


@pytest.mark.django_db
def test_the_audit_trail_records_the_same_address(client):
    pm = MembershipFactory(role=Role.PM)
    record = DmpRecordFactory(project=pm.project)
    obj = DataObjectFactory(
        project=pm.project,
        record=record,
        uploaded_by=pm.user,
        tier=Tier.NON_SHARED,
        checksum_state=DataObject.ChecksumState.VERIFIED,
    )
    client.force_login(pm.user)
    with _proxies(1):
        client.post(
            f"/objects/{obj.pk}/tier",
            {"tier": Tier.SHARED},
            REMOTE_ADDR="10.0.0.5",
            HTTP_X_FORWARDED_FOR="198.51.100.7",
        )
    event = AuditEvent.objects.get(data_object=obj, action=AuditEvent.Action.TIER_CHANGED)
    assert event.ip_address == "198.51.100.7"
