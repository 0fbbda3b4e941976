"""Tier change requests, access requests and the audit trail through the API.

Reads go through repository/access.py, writes through repository/governance/tiers.py and
repository/governance/grants.py: the same rules, refusals, e-mails and audit events as the pages."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import NewestFirst, service_call
from core.http import client_ip
from repository.access import (
    access_requests_visible_to,
    audit_events_visible_to,
    records_visible_to,
    tier_requests_visible_to,
)
from repository.api import serializers
from repository.api.filters import IdFilter, IdFilterSet, MomentFilter
from repository.governance import grants, tiers
from repository.models import AccessRequest, AuditEvent, TierChangeRequest


class TierRequestFilter(IdFilterSet):
    class Meta:
        model = TierChangeRequest
        fields = ["project", "status", "requested_tier", "requested_by"]


def _tier_requests(user):
    return tier_requests_visible_to(user).prefetch_related("data_objects")


class TierRequestListView(generics.ListAPIView):
    """Tier change requests: curators see all, the PM and data managers their project's,
    everyone their own. POST changes tiers, or asks a curator to (see the rules in the
    description of the response)."""

    serializer_class = serializers.TierRequestSerializer
    pagination_class = NewestFirst
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = TierRequestFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return _tier_requests(self.request.user).order_by("-pk")

    @extend_schema(
        request=serializers.TierChangeSerializer,
        responses={
            200: serializers.TierChangeOutcomeSerializer,
            201: serializers.TierChangeOutcomeSerializer,
        },
        description=(
            "Sharing within the project and making data less open apply at once (200). "
            "Opening to a reviewed tier (public, embargoed) creates a pending request for a "
            "curator (201), and is refused with the reason, file by file, for personal data, "
            "unverified checksums and quarantined files."
        ),
    )
    def post(self, request):
        data = serializers.TierChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        outcome = service_call(
            tiers.tier_change_request,
            actor=request.user,
            data_object_ids=fields["data_objects"],
            tier=fields["tier"],
            available_date=fields["available_date"],
            reason=fields["reason"],
            ip_address=client_ip(request),
        )
        tier_request = (
            _tier_requests(request.user).get(pk=outcome.request.pk) if outcome.request else None
        )
        body = {
            "applied": [obj.pk for obj in outcome.applied],
            "request": serializers.TierRequestSerializer(tier_request).data
            if tier_request
            else None,
        }
        return Response(
            body, status=status.HTTP_201_CREATED if tier_request else status.HTTP_200_OK
        )


class TierRequestDetailView(generics.RetrieveAPIView):
    serializer_class = serializers.TierRequestSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_url_kwarg = "request_id"

    def get_queryset(self):
        return _tier_requests(self.request.user)


class TierRequestDecisionView(APIView):
    """A curator approves (the tier applies to every object, or to none) or rejects."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=serializers.DecisionSerializer,
        responses={200: serializers.TierRequestSerializer},
    )
    def post(self, request, request_id: int):
        generics.get_object_or_404(_tier_requests(request.user), pk=request_id)
        data = serializers.DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service_call(
            tiers.tier_request_decide,
            actor=request.user,
            tier_request_id=request_id,
            approve=data.validated_data["approve"],
            comment=data.validated_data["comment"],
            ip_address=client_ip(request),
        )
        decided = _tier_requests(request.user).get(pk=request_id)
        return Response(serializers.TierRequestSerializer(decided).data)


class AccessRequestFilter(IdFilterSet):
    project = IdFilter(field_name="record__project")

    class Meta:
        model = AccessRequest
        fields = ["record", "status", "requester"]


def _access_requests(user):
    return access_requests_visible_to(user).select_related("record", "grant")


class AccessRequestListView(generics.ListAPIView):
    """Requests for a record's shared data: curators see all, the PM and data managers
    those for their project's records, everyone their own. POST asks (a purpose is
    required; project members, holders of a live grant and a second pending request are
    refused)."""

    serializer_class = serializers.AccessRequestSerializer
    pagination_class = NewestFirst
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = AccessRequestFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return _access_requests(self.request.user).order_by("-pk")

    @extend_schema(
        request=serializers.AccessRequestCreateSerializer,
        responses={201: serializers.AccessRequestSerializer},
    )
    def post(self, request):
        data = serializers.AccessRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = records_visible_to(request.user).filter(pk=data.validated_data["record"]).first()
        if record is None:  # missing and closed records answer alike
            raise exceptions.ValidationError({"record": ["No such dataset."]})
        created = service_call(
            grants.access_request_create,
            requester=request.user,
            record=record,
            purpose=data.validated_data["purpose"],
        )
        body = serializers.AccessRequestSerializer(
            _access_requests(request.user).get(pk=created.pk)
        )
        return Response(body.data, status=status.HTTP_201_CREATED)


class AccessRequestDetailView(generics.RetrieveAPIView):
    serializer_class = serializers.AccessRequestSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_url_kwarg = "request_id"

    def get_queryset(self):
        return _access_requests(self.request.user)


class AccessRequestDecisionView(APIView):
    """The PM or a data manager approves (with the grant's last day) or rejects (with a
    comment, sent to the requester)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=serializers.AccessDecisionSerializer,
        responses={200: serializers.AccessRequestSerializer},
    )
    def post(self, request, request_id: int):
        access_request = generics.get_object_or_404(_access_requests(request.user), pk=request_id)
        data = serializers.AccessDecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        project = access_request.record.project
        if fields["approve"]:
            service_call(
                grants.access_request_approve,
                actor=request.user,
                project=project,
                access_request_id=request_id,
                expires_on=fields["expires_on"],
                comment=fields["comment"],
                ip_address=client_ip(request),
            )
        else:
            service_call(
                grants.access_request_reject,
                actor=request.user,
                project=project,
                access_request_id=request_id,
                comment=fields["comment"],
                ip_address=client_ip(request),
            )
        decided = _access_requests(request.user).get(pk=request_id)
        return Response(serializers.AccessRequestSerializer(decided).data)


class AuditEventFilter(IdFilterSet):
    occurred_after = MomentFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = MomentFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["project", "action", "actor", "data_object", "record"]


class AuditEventListView(generics.ListAPIView):
    """The audit trail (read-only: nothing in Kura edits or deletes it): curators read all
    of it, the PM and data managers their project's."""

    serializer_class = serializers.AuditEventSerializer
    pagination_class = NewestFirst
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = AuditEventFilter
    ordering_fields = ["id"]

    def get_queryset(self):
        return audit_events_visible_to(self.request.user).order_by("-pk")


class AuditEventDetailView(generics.RetrieveAPIView):
    serializer_class = serializers.AuditEventSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_url_kwarg = "event_id"

    def get_queryset(self):
        return audit_events_visible_to(self.request.user)
