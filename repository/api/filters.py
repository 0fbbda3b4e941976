"""Query filters of the API's lists (django-filter); they narrow what access.py allows.

A filter on a related row (``?project=``, ``?record=``, ``?actor=`` …) takes its id as a
plain integer and only narrows the list, which is already limited to what the caller may
see: a hidden id and a missing one both answer 200 with an empty list. django-filter's
default (a choice among all rows of the table) answered 400 ``invalid_choice`` for a
missing id only, which told anyone which ids exist."""

import copy
import datetime

import django_filters
from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Project
from dmp.models import DmpRecord
from repository.models import DataObject

# The largest id PostgreSQL's bigint holds: a larger one is a bad request, not a lookup.
MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A related row by its id: a whole number, nothing else, looked up on the list as it is."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class MomentField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 moment, turned to UTC: PostgreSQL refuses offsets beyond ±15:59 that
    Python accepts (up to ±23:59), and a moment outside the years 1–9999 is refused here
    rather than by the database (a 500)."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError as exc:
            raise forms.ValidationError(
                _("Enter a date and time within the years 1 to 9999."), code="invalid"
            ) from exc


class MomentFilter(django_filters.IsoDateTimeFilter):
    field_class = MomentField


_ID_FILTER = {"filter_class": IdFilter}


class IdFilterSet(django_filters.FilterSet):
    """Every foreign key filters by id (:class:`IdFilter`), never by a choice among rows."""

    FILTER_DEFAULTS = {
        **copy.deepcopy(django_filters.filterset.FILTER_FOR_DBFIELD_DEFAULTS),
        models.ForeignKey: _ID_FILTER,
        models.OneToOneField: _ID_FILTER,
        models.ManyToManyField: _ID_FILTER,
    }


class DataObjectFilter(IdFilterSet):
    created_after = MomentFilter(field_name="created_at", lookup_expr="gte")
    created_before = MomentFilter(field_name="created_at", lookup_expr="lt")
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


class RecordFilter(IdFilterSet):
    updated_after = MomentFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = MomentFilter(field_name="updated_at", lookup_expr="lt")

    class Meta:
        model = DmpRecord
        fields = ["project", "metadata_access", "access_rights", "data_type"]


class ProjectFilter(IdFilterSet):
    class Meta:
        model = Project
        fields = ["funder", "funding_stream_code", "institution"]
