"""The records API: reads through repository/access.py, writes through dmp/services.py."""

from django.db.models import Prefetch
from rest_framework import generics, permissions, status
from rest_framework.response import Response

from core.api import NewestFirst, service_call
from core.http import client_ip
from dmp import services
from dmp.models import RecordCreator
from repository.access import projects_visible_to, records_visible_to
from repository.api.filters import RecordFilter
from repository.plans.api import serializers
from repository.plans.selectors import record_object_totals
from repository.usage.capture import Kind, scope_of_record, usage_note


def _records(user):
    return (
        records_visible_to(user)
        .select_related("project")
        .prefetch_related(
            Prefetch("creators", queryset=RecordCreator.objects.order_by("position", "pk"))
        )
        .annotate(**record_object_totals(user))
    )


class RecordListView(generics.ListCreateAPIView):
    serializer_class = serializers.RecordSerializer
    pagination_class = NewestFirst
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    filterset_class = RecordFilter
    ordering_fields = ["id", "updated_at", "data_number"]

    def get_queryset(self):
        return _records(self.request.user).order_by("-pk")

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if "data" in kwargs:
            # A project one may not see is "not found", exactly like a missing one.
            serializer.fields["project"].queryset = projects_visible_to(self.request.user)
        return serializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        project = fields.pop("project")
        creators = fields.pop("creators", [])
        record = service_call(
            services.record_create,
            actor=request.user,
            project=project,
            fields=fields,
            creators=creators,
            ip_address=client_ip(request),
        )
        body = serializers.RecordSerializer(_records(request.user).get(pk=record.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class RecordDetailView(generics.RetrieveUpdateAPIView):
    serializer_class = serializers.RecordUpdateSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    lookup_url_kwarg = "record_id"

    def get_queryset(self):
        return _records(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        """One record; a read counts as a (machine) investigation of the dataset."""
        record = self.get_object()
        usage_note(
            request,
            kind=Kind.INVESTIGATION,
            record_id=record.pk,
            scope=scope_of_record(request.user, record),
        )
        return Response(self.get_serializer(record).data)

    def update(self, request, *args, **kwargs):
        record = self.get_object()
        serializer = self.get_serializer(
            record, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        creators = fields.pop("creators", None)
        record = service_call(
            services.record_update,
            actor=request.user,
            record=record,
            fields=fields,
            creators=creators,
            ip_address=client_ip(request),
        )
        return Response(self.get_serializer(_records(request.user).get(pk=record.pk)).data)
