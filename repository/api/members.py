"""The members API: a project's members and pending invitations (anyone who may read the
members page), invitations, role changes, removals and withdrawals (its PM and data
managers, through the same services as the page: accounts/members.py, accounts/invitations.py).

The project answers 404 to whoever may not read its members; a reader who may not manage
them gets the service's 403 with its reason, as does a data manager touching a PM.
"""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import invitations, members
from accounts.models import Invitation, Membership, Role
from accounts.roles import ProjectAction
from core.api import service_call
from repository.access import access_project


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    name = serializers.CharField(source="user.display_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "name", "role", "created_at"]
        read_only_fields = fields


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.CharField(source="invited_by.username", read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "kind", "value", "role", "invited_by", "created_at", "expires_at"]
        read_only_fields = fields


class InvitationCreatedSerializer(InvitationSerializer):
    link = serializers.CharField(
        read_only=True, help_text="The invitation's link: shown this once, never stored."
    )

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "link"]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A researcher, by e-mail",
            value={"kind": "email", "value": "sato@example.ac.jp", "role": "researcher"},
            request_only=True,
        ),
        OpenApiExample(
            "A data manager, by GakuNin ePPN",
            value={"kind": "eppn", "value": "sato@example.ac.jp", "role": "data_manager"},
            request_only=True,
        ),
        OpenApiExample(
            "A collaborator, by ORCID iD",
            value={"kind": "orcid", "value": "0000-0002-1825-0097", "role": "collaborator"},
            request_only=True,
        ),
    ]
)
class InviteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Invitation.Kind.choices)
    value = serializers.CharField(max_length=255)
    role = serializers.ChoiceField(choices=Role.choices)


@extend_schema_serializer(
    examples=[
        OpenApiExample("Make a data manager", value={"role": "data_manager"}, request_only=True)
    ]
)
class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


def _path(name: str, description: str, example: int) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        int,
        OpenApiParameter.PATH,
        description=description,
        examples=[OpenApiExample(description, value=example)],
    )


PROJECT = _path("project_id", "The project", 12)
MEMBER = _path("membership_id", "The membership (its id in the members list)", 57)
INVITATION = _path("invitation_id", "A pending invitation", 9)


def _project(request, project_id: int):
    return access_project(request.user, project_id, need=ProjectAction.READ_MEMBERS)


class MemberListView(APIView):
    """GET: the project's members. POST: invite someone (the link is in the answer, once;
    an e-mail invitation is also mailed)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: MemberSerializer(many=True)}, parameters=[PROJECT])
    def get(self, request, project_id: int):
        project = _project(request, project_id)
        return Response(MemberSerializer(members.project_members(project), many=True).data)

    @extend_schema(
        request=InviteSerializer,
        responses={201: InvitationCreatedSerializer},
        parameters=[PROJECT],
    )
    def post(self, request, project_id: int):
        project = _project(request, project_id)
        data = InviteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, token = service_call(
            invitations.member_invite, actor=request.user, project=project, **data.validated_data
        )
        invitation.link = invitations.invitation_url(token)
        return Response(
            InvitationCreatedSerializer(invitation).data, status=status.HTTP_201_CREATED
        )


class MemberDetailView(APIView):
    """PATCH: change the member's role. DELETE: remove the member."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=RoleSerializer, responses={200: MemberSerializer}, parameters=[PROJECT, MEMBER]
    )
    def patch(self, request, project_id: int, membership_id: int):
        project = _project(request, project_id)
        data = RoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            membership = service_call(
                members.member_role_change,
                actor=request.user,
                project=project,
                membership_pk=membership_id,
                role=data.validated_data["role"],
            )
        except Membership.DoesNotExist as exc:
            raise exceptions.NotFound() from exc
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None}, parameters=[PROJECT, MEMBER])
    def delete(self, request, project_id: int, membership_id: int):
        project = _project(request, project_id)
        try:
            service_call(
                members.member_remove,
                actor=request.user,
                project=project,
                membership_pk=membership_id,
            )
        except Membership.DoesNotExist as exc:
            raise exceptions.NotFound() from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(APIView):
    """GET: the project's pending invitations."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: InvitationSerializer(many=True)}, parameters=[PROJECT])
    def get(self, request, project_id: int):
        project = _project(request, project_id)
        pending = invitations.invitations_pending(project=project).order_by("expires_at", "pk")
        return Response(InvitationSerializer(pending, many=True).data)


class InvitationDetailView(APIView):
    """DELETE: withdraw a pending invitation."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None}, parameters=[PROJECT, INVITATION])
    def delete(self, request, project_id: int, invitation_id: int):
        project = _project(request, project_id)
        try:
            service_call(
                invitations.invitation_revoke,
                actor=request.user,
                project=project,
                invitation_pk=invitation_id,
            )
        except Invitation.DoesNotExist as exc:
            raise exceptions.NotFound() from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
