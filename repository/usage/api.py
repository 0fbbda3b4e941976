"""The usage API: a record's COUNTER figures, and the COUNTER Research Data SUSHI dataset
report (``/api/v1/reports/dsr``) of the repository or of one project."""

import datetime

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from repository.access import access_project, may_read_restricted_usage
from repository.discovery.public import landing
from repository.usage.report import dataset_report
from repository.usage.selectors import ScopeCounts, record_usage, usage_by_scope

MAX_REPORT_MONTHS = 120


class CountsSerializer(serializers.Serializer):
    total_investigations = serializers.IntegerField(help_text="Views and downloads.")
    unique_investigations = serializers.IntegerField(help_text="Sessions (visitor and hour).")
    total_requests = serializers.IntegerField(help_text="Downloads.")
    unique_requests = serializers.IntegerField()


class PublicCountsSerializer(serializers.Serializer):
    regular = CountsSerializer(help_text="People.")
    machine = CountsSerializer(help_text="Scripts, harvesters and the API.")


class MonthUsageSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM, in Kura's time zone.")
    public = CountsSerializer()
    shared = CountsSerializer(allow_null=True)
    project = CountsSerializer(allow_null=True)


class RecordUsageSerializer(serializers.Serializer):
    record = serializers.IntegerField()
    public = PublicCountsSerializer()
    shared = CountsSerializer(
        allow_null=True,
        help_text="Downloads and views through access grants and reviews (null unless the"
        " caller reads the project's dashboard or is a program officer).",
    )
    project = CountsSerializer(allow_null=True, help_text="By the project's own members.")
    months = MonthUsageSerializer(many=True)


ZERO = {
    "total_investigations": 0,
    "unique_investigations": 0,
    "total_requests": 0,
    "unique_requests": 0,
}
USAGE_EXAMPLE = OpenApiExample(
    "A record's usage",
    value={
        "record": 345,
        "public": {
            "regular": {
                "total_investigations": 120,
                "unique_investigations": 95,
                "total_requests": 31,
                "unique_requests": 22,
            },
            "machine": {**ZERO, "total_investigations": 14, "unique_investigations": 3},
        },
        "shared": {
            **ZERO,
            "total_investigations": 6,
            "unique_investigations": 4,
            "total_requests": 6,
            "unique_requests": 4,
        },
        "project": None,
        "months": [
            {
                "month": "2026-11",
                "public": {**ZERO, "total_investigations": 40, "unique_investigations": 33},
                "shared": None,
                "project": None,
            }
        ],
    },
    response_only=True,
)


class RecordUsageView(APIView):
    """A record's views and downloads, counted by the COUNTER Code of Practice for Research
    Data: robots left out, a click repeated within 30 seconds counted once, unique counts
    per session-hour, machine access apart from people's. Anyone who may read the record
    gets its public figures (public files only); its project's stewards, curators and
    program officers also the shared and in-project ones."""

    @extend_schema(responses={200: RecordUsageSerializer}, examples=[USAGE_EXAMPLE])
    def get(self, request, record_id: int):
        record = landing.record_for_landing(user=request.user, record_id=record_id)
        restricted = may_read_restricted_usage(request.user, record.project)
        figures = record_usage(record.pk, restricted=restricted)
        months = usage_by_scope(by="month", record_id=record.pk, restricted=restricted)
        body = {
            "record": record.pk,
            "public": {
                "regular": figures["public"].as_dict(),
                "machine": figures["public_machine"].as_dict(),
            },
            "shared": figures["shared"].as_dict() if restricted else None,
            "project": figures["project"].as_dict() if restricted else None,
            "months": [
                _month(month, counts, restricted) for month, counts in sorted(months.items())
            ],
        }
        return Response(body)


def _month(month: datetime.date, counts: ScopeCounts, restricted: bool) -> dict:
    return {
        "month": month.strftime("%Y-%m"),
        "public": counts.public.as_dict(),
        "shared": counts.shared.as_dict() if restricted else None,
        "project": counts.project.as_dict() if restricted else None,
    }


class ReportQuerySerializer(serializers.Serializer):
    begin_date = serializers.CharField(required=False, help_text="YYYY-MM or YYYY-MM-DD")
    end_date = serializers.CharField(required=False, help_text="YYYY-MM or YYYY-MM-DD")
    project = serializers.IntegerField(required=False, min_value=1)

    def _month(self, value: str) -> datetime.date:
        for pattern in ("%Y-%m", "%Y-%m-%d"):
            try:
                return datetime.datetime.strptime(value, pattern).date().replace(day=1)  # noqa: DTZ007 - a date
            except ValueError:
                continue
        raise serializers.ValidationError("Give a month as YYYY-MM (or a date YYYY-MM-DD).")

    def validate_begin_date(self, value: str) -> datetime.date:
        return self._month(value)

    def validate_end_date(self, value: str) -> datetime.date:
        return self._month(value)

    def validate(self, attrs: dict) -> dict:
        this_month = timezone.localdate().replace(day=1)
        end = attrs.get("end_date") or this_month
        begin = attrs.get("begin_date") or end
        if begin > end:
            raise serializers.ValidationError({"begin_date": "begin_date is after end_date."})
        if end > this_month:
            # COUNTER's exception 3031, "Usage Not Ready for Requested Dates".
            raise serializers.ValidationError(
                {"end_date": "end_date is after the current month: no usage is counted yet."}
            )
        if (end.year - begin.year) * 12 + end.month - begin.month >= MAX_REPORT_MONTHS:
            raise serializers.ValidationError(
                {"end_date": f"A report covers at most {MAX_REPORT_MONTHS} months."}
            )
        return {**attrs, "begin_date": begin, "end_date": end}


DSR_EXAMPLE = OpenApiExample(
    "A dataset report",
    value={
        "report-header": {
            "report-name": "dataset report",
            "report-id": "dsr",
            "release": "rd1",
            "created": "2026-12-01T09:00:00+09:00",
            "created-by": "Kura",
            "report-filters": [
                {"name": "begin-date", "value": "2026-11"},
                {"name": "end-date", "value": "2026-11"},
            ],
            "report-attributes": [],
            "reporting-period": {"begin-date": "2026-11-01", "end-date": "2026-11-30"},
            "exceptions": [],
        },
        "report-datasets": [
            {
                "dataset-title": "Methane flux of paddy fields",
                "dataset-id": [{"type": "uri", "value": "https://kura.example.org/datasets/345/"}],
                "platform": "Kura",
                "publisher": "Example University",
                "publisher-id": [{"type": "client-id", "value": "example.kura"}],
                "data-type": "dataset",
                "yop": "2026",
                "access-method": "regular",
                "performance": [
                    {
                        "period": {"begin-date": "2026-11-01", "end-date": "2026-11-30"},
                        "instance": [
                            {
                                "metric-type": "total-dataset-investigations",
                                "count": 40,
                                "access-method": "regular",
                            }
                        ],
                    }
                ],
            }
        ],
    },
    response_only=True,
)


class DatasetReportView(APIView):
    """The COUNTER Research Data dataset report (SUSHI ``/reports/dsr``, release ``rd1``):
    public views and downloads of every dataset by month, for the whole repository or one
    ``project`` (a project one may not see answers 404). Months are ``YYYY-MM``, not after
    the current month; without them, the current month. A report reaching into the
    current month is partial: its period ends today, with COUNTER's exception 3040."""

    @extend_schema(
        parameters=[ReportQuerySerializer],
        responses={
            200: inline_serializer(
                "DatasetReport",
                {
                    "report-header": serializers.DictField(),
                    "report-datasets": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
        examples=[DSR_EXAMPLE],
    )
    def get(self, request):
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        project = None
        if "project" in query.validated_data:
            project = access_project(request.user, query.validated_data["project"])
        report = dataset_report(
            begin=query.validated_data["begin_date"],
            end=query.validated_data["end_date"],
            project=project,
            absolute=request.build_absolute_uri,
        )
        return Response(report)
