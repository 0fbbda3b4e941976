"""Tier change requests through the API: reads through repository/access.py, writes
through repository/tiers.py (the same rules and audit trail as the web pages)."""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import NewestFirst, service_call
from repository import tiers
from repository.access import tier_requests_visible_to
from repository.models import TierChangeRequest

from . import serializers


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


class TierRequestFilter(django_filters.FilterSet):
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
            ip_address=_ip(request),
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
            ip_address=_ip(request),
        )
        decided = _tier_requests(request.user).get(pk=request_id)
        return Response(serializers.TierRequestSerializer(decided).data)
