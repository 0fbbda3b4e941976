from rest_framework import serializers

from dmp.vocabularies import Tier
from repository.models import DataObject


class UploadStartSerializer(serializers.Serializer):
    project = serializers.IntegerField(min_value=1)
    record = serializers.IntegerField(min_value=1, allow_null=True, required=False, default=None)
    filename = serializers.CharField(max_length=4096, trim_whitespace=False)
    size = serializers.IntegerField()
    content_type = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default=""
    )
    tier = serializers.ChoiceField(choices=Tier.choices, default=Tier.NON_SHARED)
    available_date = serializers.DateField(required=False, allow_null=True, default=None)
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", required=False, allow_blank=True, default=""
    )


class UploadStartedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    object_id = serializers.IntegerField(source="data_object_id")
    part_size = serializers.IntegerField()
    part_count = serializers.IntegerField()


class PartNumbersSerializer(serializers.Serializer):
    part_numbers = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=1000
    )


class PartUrlSerializer(serializers.Serializer):
    part_number = serializers.IntegerField()
    url = serializers.CharField()


class StoredPartSerializer(serializers.Serializer):
    part_number = serializers.IntegerField()
    size = serializers.IntegerField()
    etag = serializers.CharField()


class CompletedPartSerializer(serializers.Serializer):
    part_number = serializers.IntegerField(min_value=1)
    etag = serializers.CharField(max_length=200)


class CompleteSerializer(serializers.Serializer):
    parts = CompletedPartSerializer(many=True, allow_empty=False, max_length=10_000)
    # The uploader's SHA-256, for a client that hashes while it sends (cross-checked later).
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", required=False, allow_blank=True, default=""
    )

    def validate_parts(self, parts):
        numbers = [p["part_number"] for p in parts]
        if len(numbers) != len(set(numbers)):
            raise serializers.ValidationError("Each part number may appear once.")
        return parts


class DataObjectSerializer(serializers.ModelSerializer):
    filename = serializers.CharField(source="original_filename")

    class Meta:
        model = DataObject
        fields = [
            "id",
            "project",
            "record",
            "filename",
            "size",
            "content_type",
            "tier",
            "available_date",
            "status",
            "checksum_state",
            "checksum_progress",
            "sha256",
            "md5",
            "quarantined_at",
            "technical_metadata",
            "contains_personal_data",
            "created_at",
            "stored_at",
        ]
        read_only_fields = fields
