"""A record's published versions as the API shows them (docs/architecture.md, "Published
versions and DOIs"). The view puts what every version of the record shares in the context:
``record`` (live), ``concept`` (or ``None``) and ``latest`` (the newest version's number)."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from core.vocabularies import Tier
from repository.models import DoiState
from repository.publishing.facts import absolute, version_path

SHA256_EXAMPLE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

VERSION_EXAMPLE = {
    "record": 345,
    "number": 2,
    "published_at": "2026-11-02T10:15:00+09:00",
    "latest": True,
    "doi": "10.99999/kura.345.v2",
    "doi_state": "findable",
    "doi_url": "https://doi.org/10.99999/kura.345.v2",
    "doi_retrying": False,
    "doi_attempted_at": "2026-11-02T10:15:04+09:00",
    "concept_doi": "10.99999/kura.345",
    "url": "https://kura.example.jp/datasets/345/versions/2/",
    "landing_url": "https://kura.example.jp/datasets/345/",
    "withdrawn": False,
    "withdrawn_at": None,
    "withdrawal_reason": "",
}

FILE_EXAMPLE = {
    "object_id": 9812,
    "name": "methane_flux_2025.csv",
    "size": 1_048_576,
    "sha256": SHA256_EXAMPLE,
    "content_type": "text/csv",
    "tier": "public",
    "available_date": None,
    "downloadable": True,
    "opens_on": None,
    "download_url": "https://kura.example.jp/objects/9812/download",
}


class VersionFileSerializer(serializers.Serializer):
    """One file of a version's manifest: frozen at publication, with what became of it."""

    object_id = serializers.IntegerField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="The SHA-256 of the bytes the version holds.")
    content_type = serializers.CharField()
    tier = serializers.ChoiceField(
        choices=Tier.choices, help_text="The file's access tier when the version was published."
    )
    available_date = serializers.DateField(
        allow_null=True, help_text="The embargo's end when the version was published."
    )
    downloadable = serializers.BooleanField(
        source="available",
        help_text="Whether anyone may download the frozen bytes now. False once the file was"
        " deleted, quarantined or made less open since (history is not rewritten: the file"
        " stays listed).",
    )
    opens_on = serializers.DateField(
        allow_null=True, help_text="Still embargoed: the day anyone may download it."
    )
    download_url = serializers.SerializerMethodField()

    @extend_schema_field(
        {
            "type": "string",
            "format": "uri",
            "nullable": True,
            "description": "Where to download it, while `downloadable`.",
        }
    )
    def get_download_url(self, file) -> str | None:
        if not file.available:
            return None
        return absolute(reverse("object-download", args=[file.object_id]))


class ExportLinkSerializer(serializers.Serializer):
    format = serializers.CharField(source="key")
    media_type = serializers.CharField()
    url = serializers.URLField()


@extend_schema_serializer(
    examples=[OpenApiExample("A published version", value=VERSION_EXAMPLE, response_only=True)]
)
class VersionSerializer(serializers.Serializer):
    """A published version: frozen, with its DOI (versions are never changed but for their
    DOI's state, and never deleted)."""

    record = serializers.IntegerField(source="record_id")
    number = serializers.IntegerField()
    published_at = serializers.DateTimeField()
    latest = serializers.SerializerMethodField()
    doi = serializers.CharField(
        help_text="The version's DOI; empty when the repository registers no DOIs"
        " (`doi_state` `local`: the version is identified by its `url`)."
    )
    doi_state = serializers.ChoiceField(
        choices=DoiState.choices,
        help_text="`pending` (not yet at the provider), `draft`, `findable`, `registered`"
        " (hidden, after withdrawal) or `local` (no DOI).",
    )
    doi_url = serializers.SerializerMethodField()
    doi_retrying = serializers.SerializerMethodField()
    doi_attempted_at = serializers.DateTimeField(allow_null=True)
    concept_doi = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    landing_url = serializers.SerializerMethodField()
    withdrawn = serializers.SerializerMethodField()
    withdrawn_at = serializers.SerializerMethodField()
    withdrawal_reason = serializers.SerializerMethodField()

    def get_latest(self, version) -> bool:
        return version.number == self.context["latest"]

    @extend_schema_field(
        {
            "type": "string",
            "format": "uri",
            "nullable": True,
            "description": "The DOI at its resolver, once it resolves (findable; registered"
            " after withdrawal, resolving to the tombstone).",
        }
    )
    def get_doi_url(self, version) -> str | None:
        if version.doi and version.doi_state in (DoiState.FINDABLE, DoiState.REGISTERED):
            return f"https://doi.org/{version.doi}"
        return None

    def get_doi_retrying(self, version) -> bool:
        """The last call to the DOI provider failed; Kura will try again."""
        return bool(version.doi_error)

    def get_concept_doi(self, version) -> str:
        """The record's concept DOI (always the latest version); empty without DOIs."""
        concept = self.context["concept"]
        return concept.doi if concept is not None else ""

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, version) -> str:
        """The version's page (what its DOI resolves to)."""
        return absolute(version_path(version.record_id, version.number))

    @extend_schema_field(OpenApiTypes.URI)
    def get_landing_url(self, version) -> str:
        """The record's landing page (the live record)."""
        return absolute(reverse("dataset-landing", args=[version.record_id]))

    def get_withdrawn(self, version) -> bool:
        """The dataset was withdrawn: every version answers with the tombstone."""
        return self.context["record"].withdrawn_at is not None

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_withdrawn_at(self, version):
        return self.context["record"].withdrawn_at

    def get_withdrawal_reason(self, version) -> str:
        return self.context["record"].withdrawal_reason


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A published version with its files",
            value={
                **VERSION_EXAMPLE,
                "files": [FILE_EXAMPLE],
                "exports": [
                    {
                        "format": "datacite-json",
                        "media_type": "application/vnd.datacite.datacite+json",
                        "url": "https://kura.example.jp/datasets/345/versions/2/export/datacite-json",
                    }
                ],
            },
            response_only=True,
        )
    ]
)
class VersionDetailSerializer(VersionSerializer):
    """A published version with its file manifest and its exports. A withdrawn dataset's
    versions keep neither (the tombstone): `files` is null and `exports` empty."""

    files = serializers.SerializerMethodField()
    exports = serializers.SerializerMethodField()

    @extend_schema_field(VersionFileSerializer(many=True, allow_null=True))
    def get_files(self, version):
        files = self.context.get("files")
        return None if files is None else VersionFileSerializer(files, many=True).data

    @extend_schema_field(ExportLinkSerializer(many=True))
    def get_exports(self, version):
        return ExportLinkSerializer(self.context.get("exports", []), many=True).data


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Withdraw a dataset",
            value={"reason": "The participants withdrew their consent."},
            request_only=True,
        )
    ]
)
class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(
        help_text="Why the dataset is withdrawn: shown on its tombstone page to everyone."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A withdrawn dataset",
            value={
                "record": 345,
                "withdrawn_at": "2026-12-07T09:30:00+09:00",
                "withdrawal_reason": "The participants withdrew their consent.",
                "landing_url": "https://kura.example.jp/datasets/345/",
            },
            response_only=True,
        )
    ]
)
class WithdrawalSerializer(serializers.Serializer):
    record = serializers.IntegerField(source="pk")
    withdrawn_at = serializers.DateTimeField()
    withdrawal_reason = serializers.CharField()
    landing_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_landing_url(self, record) -> str:
        """The tombstone, where the record's DOIs now resolve."""
        return absolute(reverse("dataset-landing", args=[record.pk]))
