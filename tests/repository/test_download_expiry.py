"""How long a presigned download link works: a setting, shorter for non-public objects,
because a link already handed out outlives a revocation until it expires."""

import datetime
import urllib.parse

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository.governance import grants
from tests.factories import AccessGrantFactory, DataObjectFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def stored(tier: str):
    member = MembershipFactory(role=Role.PM)
    later = timezone.localdate() + datetime.timedelta(days=30)
    data_object = DataObjectFactory(
        project=member.project,
        uploaded_by=member.user,
        tier=tier,
        available_date=later if tier == Tier.EMBARGOED else None,
        size=4,
    )
    default_storage.save(data_object.storage_key, ContentFile(b"data"))
    return data_object, member.user


def link_lifetime(client, data_object) -> int:
    response = client.get(f"/objects/{data_object.pk}/download")
    assert response.status_code == 302, response.content
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(response["Location"]).query)
    return int(query["X-Amz-Expires"][0])


@pytest.mark.parametrize(
    ("tier", "expected"),
    [(Tier.PUBLIC, 300), (Tier.SHARED, 60), (Tier.NON_SHARED, 60), (Tier.EMBARGOED, 60)],
)
def test_links_to_non_public_objects_live_shorter_by_default(client, tier, expected):
    data_object, steward = stored(tier)
    client.force_login(steward)

    assert link_lifetime(client, data_object) == expected


def test_both_lifetimes_are_settings(client, settings):
    settings.KURA_DOWNLOAD_URL_EXPIRY = 120
    settings.KURA_RESTRICTED_DOWNLOAD_URL_EXPIRY = 15
    public, steward = stored(Tier.PUBLIC)
    shared, _steward = stored(Tier.SHARED)
    client.force_login(steward)
    assert link_lifetime(client, public) == 120
    client.force_login(_steward)
    assert link_lifetime(client, shared) == 15


def test_a_revoked_grantee_gets_no_new_link_and_old_links_are_short(client):
    data_object, steward = stored(Tier.SHARED)
    grantee = UserFactory()
    grant = AccessGrantFactory(record=data_object.record, grantee=grantee, granted_by=steward)
    client.force_login(grantee)
    assert link_lifetime(client, data_object) == 60  # what a revocation cannot call back

    grants.access_grant_revoke(actor=steward, project=data_object.project, grant_id=grant.pk)

    refused = client.get(f"/objects/{data_object.pk}/download")
    assert refused.status_code == 404
    assert "Location" not in refused
