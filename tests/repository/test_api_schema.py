import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_openapi_document_describes_the_upload_api(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    for path in (
        "/api/v1/uploads/",
        "/api/v1/uploads/{upload_id}/parts",
        "/api/v1/uploads/{upload_id}/complete",
        "/api/v1/objects/{object_id}/",
    ):
        assert path in document["paths"], path


def test_openapi_document_offers_token_authentication(client):
    document = yaml.safe_load(client.get("/api/schema/").content)

    assert document["components"]["securitySchemes"]["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token from /accounts/tokens/ (kura_…).",
    }
    upload = document["paths"]["/api/v1/uploads/"]["post"]
    assert {"apiToken": []} in upload["security"]
    assert "sha256" in document["components"]["schemas"]["CompleteRequest"]["properties"]


def test_openapi_document_describes_the_versions_api(client):
    document = yaml.safe_load(client.get("/api/schema/").content)
    paths = document["paths"]
    versions = paths["/api/v1/records/{record_id}/versions/"]
    assert set(versions) >= {"get", "post"}
    assert "requestBody" not in versions["post"]  # publishing takes no input
    assert {"apiToken": []} in versions["post"]["security"]
    assert {} not in versions["post"]["security"]  # never anonymous
    assert "get" in paths["/api/v1/records/{record_id}/versions/{number}/"]
    withdraw = paths["/api/v1/records/{record_id}/withdraw"]["post"]
    assert withdraw["requestBody"]["required"] is True
    schemas = document["components"]["schemas"]
    assert schemas["WithdrawRequest"]["required"] == ["reason"]
    file_fields = schemas["VersionFile"]["properties"]
    assert {"sha256", "tier", "downloadable", "download_url"} <= set(file_fields)
    assert schemas["VersionDetail"]["properties"]["files"]["nullable"] is True
