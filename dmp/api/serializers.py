from django.utils.translation import gettext as _
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


class RecordSerializer(serializers.ModelSerializer):
    """A DMP record with every common metadata item; writes go through dmp.services."""

    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.all())
    creators = CreatorSerializer(many=True, required=False)

    class Meta:
        model = DmpRecord
        fields = ["id", "project", *RECORD_FIELDS, "creators", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness and the cross-field rules are checked by the service, per field.
        validators = []


class RecordUpdateSerializer(RecordSerializer):
    project = serializers.PrimaryKeyRelatedField(read_only=True)
