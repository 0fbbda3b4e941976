"""Three-state flags stay three-state: maDMP's personal_data and sensitive_data through
import, export, the records API and the record page ("unknown" is never "no"); an
imported "unknown" keeps the record's files from opening."""

import copy
import json

import pytest
from rest_framework.test import APIClient

from core.vocabularies import Tier
from dmp.madmp import madmp_export
from dmp.madmp_import import madmp_import
from dmp.models import DmpRecord
from repository.models import DataObject, TierChangeRequest
from tests.dmp.test_madmp import FOREIGN_DOCUMENT, _project, data_manager, pm  # noqa: F401
from tests.factories import DataObjectFactory

pytestmark = pytest.mark.django_db

STORED = {"yes": True, "no": False, "unknown": None}


def _document(personal: str, sensitive: str) -> str:
    document = copy.deepcopy(FOREIGN_DOCUMENT)
    dataset = document["dmp"]["dataset"][0]
    dataset["personal_data"], dataset["sensitive_data"] = personal, sensitive
    return json.dumps(document)


@pytest.mark.parametrize(
    ("personal", "sensitive"), [("unknown", "yes"), ("yes", "no"), ("no", "unknown")]
)
def test_flags_survive_import_export_and_the_api(pm, data_manager, personal, sensitive):  # noqa: F811
    project = _project("", pm, data_manager)

    (record,) = madmp_import(actor=pm, project=project, document=_document(personal, sensitive))

    record = DmpRecord.objects.get(pk=record.pk)
    assert record.contains_personal_data is STORED[personal]
    (dataset,) = madmp_export(project=project)["dmp"]["dataset"]
    assert (dataset["personal_data"], dataset["sensitive_data"]) == (personal, sensitive)

    api = APIClient()
    api.force_authenticate(pm)
    url = f"/api/v1/records/{record.pk}/"
    assert api.get(url).json()["contains_personal_data"] is STORED[personal]
    # An edit of something else through the API keeps the flag as it was.
    assert api.patch(url, {"title_en": "Cool data, edited"}, format="json").status_code == 200
    record.refresh_from_db()
    assert record.contains_personal_data is STORED[personal]
    (dataset,) = madmp_export(project=project)["dmp"]["dataset"]
    assert dataset["title"] == "Cool data, edited"
    assert (dataset["personal_data"], dataset["sensitive_data"]) == (personal, sensitive)


def test_the_record_page_says_unknown_not_no(client, pm, data_manager):  # noqa: F811
    project = _project("", pm, data_manager)
    (record,) = madmp_import(actor=pm, project=project, document=_document("unknown", "no"))
    client.force_login(pm)

    response = client.get(
        f"/projects/{project.pk}/dmp/records/{record.pk}/", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 200
    shown = {
        str(item["label"]): item["ja"]
        for section in response.context["sections"]
        for item in section["items"]
    }
    assert shown["Contains personal data"] == "Unknown"


def test_the_api_sets_and_keeps_the_unknown_state(pm, data_manager):  # noqa: F811
    project = _project("", pm, data_manager)
    (record,) = madmp_import(actor=pm, project=project, document=_document("no", "no"))
    api = APIClient()
    api.force_authenticate(pm)

    response = api.patch(
        f"/api/v1/records/{record.pk}/", {"contains_personal_data": None}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["contains_personal_data"] is None
    (dataset,) = madmp_export(project=project)["dmp"]["dataset"]
    assert dataset["personal_data"] == "unknown"


def test_an_imported_unknown_survives_and_keeps_the_records_files_closed(pm, data_manager):  # noqa: F811
    project = _project("", pm, data_manager)
    (record,) = madmp_import(actor=pm, project=project, document=_document("unknown", "no"))
    data_object = DataObjectFactory(
        project=project,
        record=record,
        uploaded_by=pm,
        original_filename="cohort.csv",
        tier=Tier.SHARED,
        checksum_state=DataObject.ChecksumState.VERIFIED,
    )
    api = APIClient()
    api.force_authenticate(pm)
    ask = {"data_objects": [data_object.pk], "tier": Tier.PUBLIC, "reason": "With the paper."}

    refused = api.post("/api/v1/tier-requests/", ask, format="json")

    assert refused.status_code == 400
    assert "cohort.csv: the record's personal-data state is unknown" in json.dumps(
        refused.json(), ensure_ascii=False
    )
    assert not TierChangeRequest.objects.exists()
    assert api.get(f"/api/v1/records/{record.pk}/").json()["contains_personal_data"] is None
    (dataset,) = madmp_export(project=project)["dmp"]["dataset"]
    assert dataset["personal_data"] == "unknown"
    # Once someone states it, the same request goes through: the unknown state was the block.
    patch = {"contains_personal_data": False}
    assert api.patch(f"/api/v1/records/{record.pk}/", patch, format="json").status_code == 200
    assert api.post("/api/v1/tier-requests/", ask, format="json").status_code == 201
    assert TierChangeRequest.objects.filter(data_objects=data_object).exists()
