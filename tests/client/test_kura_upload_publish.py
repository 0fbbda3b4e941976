"""``kura-upload publish RECORD`` against a live Kura, the client in its own process: one
line out on success, one line on stderr and a non-zero exit on a refusal."""

import hashlib

import pytest

from accounts.models import Role
from accounts.tokens import api_token_create
from core.vocabularies import MetadataAccess, Tier
from repository.models import DataObject, DatasetVersion
from tests.client.test_kura_upload import kura_upload, one_line_error
from tests.dmp.complete_records import complete_record
from tests.factories import DataObjectFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def record():
    pm = MembershipFactory(role=Role.PM)
    record = complete_record(pm.project, metadata_access=MetadataAccess.OPEN)
    DataObjectFactory(
        project=pm.project,
        record=record,
        original_filename="counts.csv",
        sha256=hashlib.sha256(b"a,1\n").hexdigest(),
        checksum_state=DataObject.ChecksumState.VERIFIED,
        tier=Tier.PUBLIC,
    )
    record.pm_token = api_token_create(user=pm.user, name="cli")[1]
    return record


def test_a_steward_publishes(live_server, record, tmp_path):
    result = kura_upload(
        "publish", record.pk, url=live_server.url, token=record.pm_token, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    number, doi, state, url = result.stdout.strip().split("\t")
    assert (number, doi, state) == ("1", "-", "local")  # the suite registers no DOIs
    assert url.endswith(f"/datasets/{record.pk}/versions/1/")
    assert DatasetVersion.objects.filter(record=record, number=1).exists()

    again = kura_upload(
        "publish", record.pk, url=live_server.url, token=record.pm_token, cwd=tmp_path
    )
    assert again.returncode == 1
    assert "(400): Nothing has changed since version 1." in one_line_error(again)
    assert DatasetVersion.objects.filter(record=record).count() == 1


def test_refusals_exit_non_zero_and_publish_nothing(live_server, record, tmp_path):
    researcher = MembershipFactory(project=record.project, role=Role.RESEARCHER).user
    token = api_token_create(user=researcher, name="cli")[1]
    denied = kura_upload("publish", record.pk, url=live_server.url, token=token, cwd=tmp_path)
    assert denied.returncode == 1
    assert "no permission to publish record" in one_line_error(denied)

    missing = kura_upload(
        "publish", record.pk + 10_000, url=live_server.url, token=record.pm_token, cwd=tmp_path
    )
    assert missing.returncode == 1
    assert "(404)" in one_line_error(missing)

    usage = kura_upload("publish", "abc", url=live_server.url, token=record.pm_token, cwd=tmp_path)
    assert usage.returncode == 2 and "RECORD" in usage.stderr
    no_token = kura_upload("publish", record.pk, url=live_server.url, token=None, cwd=tmp_path)
    assert no_token.returncode == 2 and "KURA_TOKEN" in no_token.stderr
    assert not DatasetVersion.objects.exists()
