from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from accounts.models import Project
from dmp.models import DmpRecord, RecordCreator
from dmp.services import CREATOR_FIELDS, RECORD_FIELDS


class CreatorSerializer(serializers.ModelSerializer):
    class Meta:
        model = RecordCreator
        fields = list(CREATOR_FIELDS)
        validators = []  # the service checks that each creator has a name, per field

    def validate(self, attrs):
        if not (attrs.get("name_ja") or attrs.get("name_en")):
            message = _("Enter the name in Japanese or English (or both).")
            raise serializers.ValidationError({"name_ja": [message], "name_en": [message]})
        return attrs


RECORD_EXAMPLE = {
    "data_number": "MS-2025-014",
    "title_ja": "農地土壌メタン放出量の連続観測データ",
    "title_en": "Continuous observations of methane emission from farmland soil",
    "description_ja": "水田3地点で2025年に連続観測したメタン放出量。",
    "description_en": "Methane emission observed continuously at three paddy fields in 2025.",
    "date_issued_updated": "2025-12-01",
    "data_research_field": "189",
    "data_type": "experimental data",
    "file_size": "1-10GB",
    "data_policy_free": "free",
    "data_policy_license": "CCBY",
    "data_policy_cite_ja": "",
    "data_policy_cite_en": "",
    "access_rights": "embargoed",
    "available_date": "2027-04-01",
    "repo_information_ja": "蔵リポジトリ",
    "repo_information_en": "Kura repository",
    "repo_url_doi_link": "",
    "hosting_inst_ja": "国立研究開発法人 蔵研究所",
    "hosting_inst_en": "Kura Research Institute",
    "hosting_inst_id": "https://ror.org/0abcdef12",
    "data_man_type": "individual",
    "data_man_number": "40598761",
    "data_man_name_ja": "佐藤 健",
    "data_man_name_en": "Ken Sato",
    "data_man_org_ja": "蔵研究所 データ管理室",
    "data_man_org_en": "Data Office, Kura Research Institute",
    "data_man_address_ja": "東京都千代田区1-1",
    "data_man_address_en": "1-1 Chiyoda, Tokyo",
    "data_man_tel": "03-1234-5678",
    "data_man_email": "data@kura.example.jp",
    "keywords_ja": "メタン, 水田",
    "keywords_en": "methane, paddy field",
    "remarks_ja": "",
    "remarks_en": "",
    "metadata_access": "open",
    "contains_personal_data": False,
    "anonymisation_attested": False,
    "creators": [
        {
            "erad_researcher_number": "70312345",
            "name_ja": "山田 花子",
            "name_en": "Hanako Yamada",
            "affiliation_ja": "蔵研究所",
            "affiliation_en": "Kura Research Institute",
        }
    ],
}


READ_EXAMPLE = OpenApiExample(
    "A record (read)",
    value={
        "id": 345,
        "project": 12,
        **RECORD_EXAMPLE,
        "withdrawn_at": None,
        "withdrawal_reason": "",
        "object_count": 3,
        "object_size": 3221225472,
        "created_at": "2025-12-01T10:00:00+09:00",
        "updated_at": "2025-12-02T15:20:00+09:00",
    },
    response_only=True,
)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A record (write)", value={"project": 12, **RECORD_EXAMPLE}, request_only=True
        ),
        READ_EXAMPLE,
    ]
)
class RecordSerializer(serializers.ModelSerializer):
    """A DMP record with every common metadata item; writes go through dmp.services."""

    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.all())
    creators = CreatorSerializer(many=True, required=False)
    object_count = serializers.IntegerField(
        read_only=True, help_text="Stored objects of the record that the caller may see."
    )
    object_size = serializers.IntegerField(read_only=True, help_text="Their size in bytes, summed.")

    class Meta:
        model = DmpRecord
        fields = [
            "id",
            "project",
            *RECORD_FIELDS,
            "creators",
            "object_count",
            "object_size",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness and the cross-field rules are checked by the service, per field.
        validators = []


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Open the metadata, add a keyword",
            value={"metadata_access": "open", "keywords_en": "methane, paddy field, flux"},
            request_only=True,
        ),
        READ_EXAMPLE,
    ]
)
class RecordUpdateSerializer(RecordSerializer):
    project = serializers.PrimaryKeyRelatedField(read_only=True)
