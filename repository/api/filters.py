"""Query filters of the API's lists (django-filter); they narrow what access.py allows."""

import django_filters

from accounts.models import Project
from dmp.models import DmpRecord
from repository.models import DataObject


class DataObjectFilter(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    filename = django_filters.CharFilter(field_name="original_filename", lookup_expr="icontains")

    class Meta:
        model = DataObject
        fields = [
            "project",
            "record",
            "tier",
            "status",
            "checksum_state",
            "contains_personal_data",
        ]


class RecordFilter(django_filters.FilterSet):
    updated_after = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="lt")

    class Meta:
        model = DmpRecord
        fields = ["project", "metadata_access", "access_rights", "data_type"]


class ProjectFilter(django_filters.FilterSet):
    class Meta:
        model = Project
        fields = ["funder", "funding_stream_code", "institution"]
