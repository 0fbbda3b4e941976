"""A record whose personal-data state is unknown blocks opening its files exactly as "yes"
does: when asked (service, object page, API), when approved (service, review page), and
the review page says why. Imports that do not state it leave it unknown."""

import datetime
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from core.vocabularies import MetadataAccess, Tier
from dmp import madmp, services
from dmp.exports import csv_parse, csv_rows
from dmp.models import DmpRecord
from dmp.records_import import records_import
from repository.governance import tiers
from repository.models import DataObject, RequestStatus, TierChangeRequest
from tests.dmp.complete_records import complete_record
from tests.dmp.test_pages import record_post_data
from tests.dmp.test_services import complete_fields
from tests.factories import DmpRecordFactory, TierChangeRequestFactory, make_curator
from tests.repository.test_tiers import ProjectWithRoles, ask, state
from tests.repository.upload_client import UploadClient

pytestmark = pytest.mark.django_db

WHY = "the record's personal-data state is unknown: set it in the DMP first."


@pytest.fixture
def setup():
    return ProjectWithRoles()


def unknown(record):
    record.contains_personal_data = None
    record.save()
    return record


def test_an_unknown_state_refuses_the_request_and_setting_it_in_the_dmp_lifts_that(setup):
    unknown(setup.record)
    data_object = setup.object(original_filename="cohort.csv")

    with pytest.raises(ValidationError) as refused:
        ask(setup.pm, [data_object], Tier.PUBLIC)

    assert refused.value.message_dict["tier"] == [f"cohort.csv: {WHY}"]
    assert not TierChangeRequest.objects.exists()
    fields = complete_fields(data_number=setup.record.data_number, contains_personal_data=False)
    services.record_update(actor=setup.pm, record=setup.record, fields=fields)
    assert ask(setup.pm, [data_object], Tier.PUBLIC).request is not None


def test_an_unknown_state_does_not_stop_sharing_within_the_project(setup):
    unknown(setup.record)
    data_object = setup.object(tier=Tier.NON_SHARED)

    ask(setup.pm, [data_object], Tier.SHARED)

    assert state(data_object) == (Tier.SHARED, None)


def test_approval_is_refused_once_the_state_became_unknown(setup):
    data_object = setup.object()
    tier_request = ask(setup.pm, [data_object], Tier.PUBLIC).request
    unknown(setup.record)

    with pytest.raises(ValidationError) as refused:
        tiers.tier_request_decide(
            actor=make_curator(), tier_request_id=tier_request.pk, approve=True
        )

    assert WHY in " ".join(refused.value.message_dict["decision"])
    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.PENDING
    assert state(data_object) == (Tier.SHARED, None)


def test_the_object_page_refuses_with_the_reason(client, setup):
    unknown(setup.record)
    data_object = setup.object(original_filename="cohort.csv")
    client.force_login(setup.pm)

    response = client.post(
        f"/objects/{data_object.pk}/tier", {"tier": "public", "reason": "With the paper."}
    )

    assert response.status_code == 400
    assert f"cohort.csv: {WHY}" in response.content.decode().replace("&#x27;", "'")
    assert not TierChangeRequest.objects.exists()


def test_the_api_refuses_with_the_reason(setup):
    unknown(setup.record)
    data_object = setup.object(original_filename="cohort.csv")
    api = APIClient()
    api.force_authenticate(setup.pm)

    response = api.post(
        "/api/v1/tier-requests/",
        {"data_objects": [data_object.pk], "tier": "public", "reason": "Paper."},
        format="json",
    )

    assert response.status_code == 400
    assert f"cohort.csv: {WHY}" in json.dumps(response.json(), ensure_ascii=False)
    assert not TierChangeRequest.objects.exists()


def test_the_review_page_says_why_and_refuses_approval(client, setup):
    data_object = setup.object(original_filename="cohort.csv")
    tier_request = TierChangeRequestFactory(project=setup.project, data_objects=[data_object])
    unknown(setup.record)
    client.force_login(make_curator())

    page = client.get(f"/review/{tier_request.pk}/").content.decode().replace("&#x27;", "'")
    response = client.post(f"/review/{tier_request.pk}/", {"decision": "approve"})

    assert f"cohort.csv: {WHY}" in page
    assert "Personal-data state unknown" in page
    assert "approval will be refused" in page
    assert response.status_code == 400
    assert WHY in response.content.decode().replace("&#x27;", "'")
    assert state(data_object) == (Tier.SHARED, None)


def test_the_review_queue_counts_an_unknown_state_as_flagged(client, setup):
    flagged = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    unknown(setup.record)
    clean_record = DmpRecordFactory(project=setup.project)
    clean = TierChangeRequestFactory(
        project=setup.project, data_objects=[setup.object(record=clean_record)]
    )
    client.force_login(make_curator())

    def listed(query):
        html = client.get(f"/review/?{query}").content.decode()
        return {r.pk for r in (flagged, clean) if f'href="/review/{r.pk}/"' in html}

    assert listed("personal_data=yes") == {flagged.pk}
    assert listed("personal_data=no") == {clean.pk}


def test_a_csv_import_leaves_the_state_unknown_so_its_files_stay_closed(setup):
    source = complete_record(setup.project, number=7)
    csv_file = io.BytesIO(b"".join(csv_rows(DmpRecord.objects.filter(pk=source.pk), "en")))
    source.delete()

    (record,) = records_import(actor=setup.pm, project=setup.project, rows=csv_parse(csv_file))
    data_object = setup.object(record=record, original_filename="cohort.csv")

    assert record.contains_personal_data is None
    with pytest.raises(ValidationError) as refused:
        ask(setup.pm, [data_object], Tier.PUBLIC)
    assert refused.value.message_dict["tier"] == [f"cohort.csv: {WHY}"]


def test_unknown_is_written_as_unknown_and_read_back_as_unknown(setup):
    record = DmpRecordFactory(
        project=setup.project, metadata_access=MetadataAccess.OPEN, **complete_fields()
    )
    unknown(record)
    api = APIClient()
    api.force_authenticate(setup.pm)

    document = madmp.madmp_export(project=setup.project, base_url="https://kura.example/")
    (dataset,) = [d for d in document["dmp"]["dataset"] if d["title"] == record.title_ja]
    body = api.get(f"/api/v1/records/{record.pk}/").json()
    set_no = api.patch(
        f"/api/v1/records/{record.pk}/", {"contains_personal_data": False}, format="json"
    )
    set_unknown = api.patch(
        f"/api/v1/records/{record.pk}/", {"contains_personal_data": None}, format="json"
    )

    assert dataset["personal_data"] == "unknown"
    assert body["contains_personal_data"] is None
    assert set_no.json()["contains_personal_data"] is False
    assert set_unknown.status_code == 200 and set_unknown.json()["contains_personal_data"] is None
    record.refresh_from_db()
    assert record.contains_personal_data is None


@pytest.mark.parametrize(
    ("choice", "stored", "shown"),
    [("unknown", None, "Unknown"), ("false", False, "No"), ("true", True, "Yes")],
)
def test_the_record_form_offers_the_three_states_and_the_page_shows_them(
    client, setup, choice, stored, shown
):
    client.force_login(setup.pm)
    form = client.get(f"/projects/{setup.project.pk}/dmp/records/new/").content.decode()

    response = client.post(
        f"/projects/{setup.project.pk}/dmp/records/new/",
        record_post_data(data_number="PD-1", contains_personal_data=choice),
    )

    assert '<option value="unknown"' in form
    record = DmpRecord.objects.get(project=setup.project, data_number="PD-1")
    assert response.status_code == 302 and record.contains_personal_data is stored
    page = client.get(response["Location"]).content.decode()
    item = page[page.index("Contains personal data</dt>") :]
    assert item[: item.index("</dd>")].endswith(f"<dd>{shown}")


@pytest.mark.parametrize(
    ("state_of_record", "reason"),
    [
        (None, WHY),
        (True, "its DMP record is flagged as containing personal data"),
    ],
)
@pytest.mark.parametrize("tier", [Tier.PUBLIC, Tier.EMBARGOED])
def test_an_upload_asking_to_open_files_of_such_a_record_is_refused_at_once(
    setup, state_of_record, reason, tier
):
    setup.record.contains_personal_data = state_of_record
    setup.record.save()
    fields = {
        "project": setup.project.pk,
        "record": setup.record.pk,
        "filename": "cohort.csv",
        "size": 1000,
        "tier": tier,
    }
    if tier == Tier.EMBARGOED:
        fields["available_date"] = (timezone.localdate() + datetime.timedelta(days=30)).isoformat()

    # With the reason a reviewed tier asks for, so that the record alone stands in the way.
    response = UploadClient(setup.pm).start(**fields, reason="For the consortium's paper.")
    shared = UploadClient(setup.pm).start(**{**fields, "tier": Tier.SHARED})

    assert response.status_code == 400
    (message,) = response.json()["errors"]["tier"]
    assert message.startswith("cohort.csv: ") and reason in message
    assert shared.status_code == 201  # within the project nothing stands in the way
    assert DataObject.objects.filter(record=setup.record, tier=Tier.SHARED).count() == 1
    assert not TierChangeRequest.objects.exists()
