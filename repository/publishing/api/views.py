"""A record's published versions through the API. Reads follow the record rule
(``landing.record_for_landing``: a record one may not see is "not found", as on the version
pages); publishing and withdrawing go through ``publishing/versions.py``, with the same
refusals (400), steward check (403) and audit events as the pages."""

from dataclasses import dataclass

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import NewestFirst, service_call
from core.http import client_ip
from dmp.models import DmpRecord
from repository.discovery.public import exports, landing
from repository.models import DatasetConcept, DatasetVersion
from repository.publishing.api import serializers
from repository.publishing.facts import absolute, still_public
from repository.publishing.selectors import version_facts_of, version_files, visible_version
from repository.publishing.versions import dataset_version_publish, dataset_withdraw


@dataclass(frozen=True)
class ExportLink:
    key: str
    media_type: str
    url: str


def _shared(record: DmpRecord) -> dict:
    """What every version of ``record`` shows alike: the serializers' context."""
    return {
        "record": record,
        "concept": DatasetConcept.objects.filter(record=record).first(),
        "latest": record.versions.order_by("-number").values_list("number", flat=True).first(),
    }


def _detail(record: DmpRecord, version: DatasetVersion) -> dict:
    """``version`` with its manifest and exports, as :class:`VersionDetailSerializer` shows
    it; a withdrawn dataset's versions keep neither (the tombstone)."""
    context = _shared(record)
    if record.withdrawn_at is None:
        public_ids = still_public(version.manifest)
        facts = version_facts_of(version, public_ids, absolute_uri=absolute)
        context["files"] = version_files(version, public_ids)
        context["exports"] = [
            ExportLink(
                entry.key,
                entry.content_type,
                absolute(
                    reverse("dataset-version-export", args=[record.pk, version.number, entry.key])
                ),
            )
            for entry in exports.REGISTRY.values()
            if exports.served(entry.key) and entry.offered(facts)
        ]
    return serializers.VersionDetailSerializer(version, context=context).data


class VersionListView(generics.ListAPIView):
    """The record's published versions, newest first: anyone who may read the record's
    metadata sees them (a record one may not see answers 404). POST publishes a new
    version (the project's PM and data managers)."""

    serializer_class = serializers.VersionSerializer
    pagination_class = NewestFirst
    filter_backends = []  # a record has few versions: no filters, newest first

    def _record(self) -> DmpRecord:
        if not hasattr(self, "_visible_record"):
            self._visible_record = landing.record_for_landing(
                user=self.request.user, record_id=self.kwargs["record_id"]
            )
        return self._visible_record

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI document is being built
            return DatasetVersion.objects.none()
        return self._record().versions.order_by("-pk")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            return context
        return {**context, **_shared(self._record())}

    @extend_schema(
        request=None,
        responses={201: serializers.VersionDetailSerializer},
        description=(
            "Freezes the record's metadata as exported and its files that a curator has"
            " opened beyond the project (stored, verified, public or embargoed) as the next"
            " version, and asks the DOI provider for its DOI (its state follows in"
            " `doi_state`). Refused with every reason (400) for a withdrawn record, metadata"
            " that is not open, required items missing, no file beyond the project, or"
            " nothing changed since the latest version; 403 for anyone but the project's"
            " PM and data managers."
        ),
    )
    def post(self, request, record_id: int):
        self._record()  # else 404, as for reading
        try:
            version = service_call(
                dataset_version_publish,
                actor=request.user,
                record_id=record_id,
                ip_address=client_ip(request),
            )
        except DmpRecord.DoesNotExist as exc:
            raise exceptions.NotFound("No such dataset.") from exc
        return Response(_detail(self._record(), version), status=status.HTTP_201_CREATED)


class VersionDetailView(APIView):
    """One published version with its file manifest (each file's SHA-256, its tier at
    publication and whether it can still be downloaded) and its exports."""

    @extend_schema(responses={200: serializers.VersionDetailSerializer})
    def get(self, request, record_id: int, number: int):
        record, version = visible_version(user=request.user, record_id=record_id, number=number)
        return Response(_detail(record, version))


class WithdrawView(APIView):
    """Withdraw the dataset (the project's PM and data managers): its landing page and
    every version become the tombstone, with the reason, and its DOIs are hidden
    (registered, resolving to the tombstone). Versions are kept, never deleted."""

    @extend_schema(
        request=serializers.WithdrawSerializer,
        responses={200: serializers.WithdrawalSerializer},
    )
    def post(self, request, record_id: int):
        landing.record_for_landing(user=request.user, record_id=record_id)  # else 404
        data = serializers.WithdrawSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            record = service_call(
                dataset_withdraw,
                actor=request.user,
                record_id=record_id,
                reason=data.validated_data["reason"],
                ip_address=client_ip(request),
            )
        except DmpRecord.DoesNotExist as exc:
            raise exceptions.NotFound("No such dataset.") from exc
        return Response(serializers.WithdrawalSerializer(record).data)
