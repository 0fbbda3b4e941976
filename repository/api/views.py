"""The upload and object API. Every object read goes through repository/access.py."""

from django.conf import settings
from django.core import signing
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import NewestFirst, service_call
from core.http import client_ip
from repository.access import (
    Action,
    access_data_object,
    access_project,
    projects_visible_to,
    visible_to,
)
from repository.api import filters, serializers
from repository.api.upload_batch import started_body, upload_request
from repository.models import UploadSession
from repository.preservation import uploads
from repository.preservation.object_store import (
    BadDigest,
    FilesystemStore,
    NoSuchUpload,
    StoreError,
)
from repository.preservation.upload_batch import upload_put_url


class UploadListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=serializers.UploadStartSerializer,
        responses={201: serializers.UploadStartedSerializer},
    )
    def post(self, request):
        data = serializers.UploadStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        session = service_call(
            uploads.upload_start,
            actor=request.user,
            request=upload_request(fields),
            ip_address=client_ip(request),
        )
        put = upload_put_url(session=session, md5=fields["md5"]) if fields["single_put"] else None
        body = started_body(request, session, put, single_put=fields["single_put"])
        return Response(body, status=201)


class UploadDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={204: None},
        parameters=[
            OpenApiParameter(
                "upload_id",
                int,
                OpenApiParameter.PATH,
                description="The upload to abort (its parts are deleted from storage).",
                examples=[OpenApiExample("An upload in flight", value=88)],
            )
        ],
    )
    def delete(self, request, upload_id: int):
        session = uploads.upload_session_for(actor=request.user, upload_pk=upload_id)
        service_call(uploads.upload_abort, session=session, ip_address=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadPartsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: serializers.StoredPartsSerializer})
    def get(self, request, upload_id: int):
        session = uploads.upload_session_for(actor=request.user, upload_pk=upload_id)
        parts = service_call(uploads.upload_parts_list, session=session)
        return Response({"parts": serializers.StoredPartSerializer(parts, many=True).data})

    @extend_schema(
        request=serializers.PartNumbersSerializer,
        responses={200: serializers.PartUrlsSerializer},
    )
    def post(self, request, upload_id: int):
        session = uploads.upload_session_for(actor=request.user, upload_pk=upload_id)
        data = serializers.PartNumbersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        signed = service_call(
            uploads.upload_part_urls,
            session=session,
            part_numbers=data.validated_data["part_numbers"],
            md5s=data.validated_data["md5s"],
        )
        return Response(
            {
                "parts": [
                    {
                        "part_number": part.part_number,
                        "url": request.build_absolute_uri(part.url),
                        "headers": part.headers,
                    }
                    for part in signed
                ],
                "expires_in": settings.KURA_UPLOAD_PART_URL_EXPIRY,
            }
        )


class UploadCompleteView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=serializers.CompleteSerializer, responses={200: serializers.DataObjectSerializer}
    )
    def post(self, request, upload_id: int):
        session = uploads.upload_session_for(actor=request.user, upload_pk=upload_id)
        data = serializers.CompleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claimed = {p["part_number"]: p["etag"] for p in data.validated_data["parts"]}
        data_object = service_call(
            uploads.upload_complete,
            session=session,
            parts=claimed,
            sha256=data.validated_data["sha256"],
            parts_sha256=data.validated_data["parts_sha256"],
            ip_address=client_ip(request),
        )
        body = serializers.DataObjectSerializer(data_object).data
        return Response({**body, "object_id": data_object.pk})


class DataObjectListView(generics.ListAPIView):
    serializer_class = serializers.DataObjectSerializer
    pagination_class = NewestFirst
    filterset_class = filters.DataObjectFilter
    ordering_fields = ["id", "created_at", "size", "original_filename"]

    def get_queryset(self):
        return visible_to(self.request.user, Action.VIEW_METADATA).order_by("-pk")


class DataObjectDetailView(generics.RetrieveAPIView):
    serializer_class = serializers.DataObjectSerializer

    def get_object(self):
        return access_data_object(self.request.user, self.kwargs["object_id"], Action.VIEW_METADATA)


class ProjectListView(generics.ListAPIView):
    """Projects the caller may see: members' own, and any with an object they may see."""

    serializer_class = serializers.ProjectSerializer
    pagination_class = NewestFirst
    filterset_class = filters.ProjectFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return projects_visible_to(self.request.user).select_related("institution").order_by("-pk")


class ProjectDetailView(generics.RetrieveAPIView):
    serializer_class = serializers.ProjectSerializer

    def get_object(self):
        return access_project(self.request.user, self.kwargs["project_id"])


@csrf_exempt  # authorised by the signed, expiring token in the URL, like a presigned S3 URL
@require_http_methods(["PUT"])
def part_put(request):
    """The embedded profile's stand-in for S3's UploadPart: write one part under var/."""
    store = FilesystemStore()
    try:
        upload_id, part_number, content_md5 = store.part_token_read(
            request.GET.get("token", ""), settings.KURA_UPLOAD_PART_URL_EXPIRY
        )
    except (signing.BadSignature, KeyError, ValueError):
        return JsonResponse({"detail": "This part URL is invalid or has expired."}, status=403)
    if content_md5 and request.headers.get("Content-MD5", "") != content_md5:
        # As S3 does: a signed header must be sent, and with the value that was signed.
        return JsonResponse(
            {"detail": "This part URL needs the Content-MD5 header it was signed with."},
            status=403,
        )
    session = (
        UploadSession.objects.select_related("data_object")
        .filter(upload_id=upload_id, completed_at__isnull=True)
        .first()
    )
    if session is None or not 1 <= part_number <= session.part_count:
        return JsonResponse({"detail": "No such upload."}, status=404)
    try:
        etag = store.part_write(
            upload_id,
            part_number,
            request,
            expected_size=uploads.expected_part_size(session, part_number),
            content_md5=content_md5,
        )
    except NoSuchUpload:
        return JsonResponse({"detail": "No such upload."}, status=404)
    except BadDigest as exc:
        return JsonResponse({"code": "BadDigest", "detail": str(exc)}, status=400)
    except StoreError as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    response = HttpResponse(status=200)
    response["ETag"] = f'"{etag}"'
    return response
