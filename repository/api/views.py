"""The upload and object API. Every object read goes through repository/access.py."""

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, pagination, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from repository import uploads
from repository.access import Action, access_data_object, visible_to
from repository.models import UploadSession
from repository.object_store import FilesystemStore, NoSuchUpload, StoreError

from . import serializers


def _service_call(function, **kwargs):
    """Run a service, turning its Django errors into DRF's (400 / 403 / 503)."""
    try:
        return function(**kwargs)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        ) from exc
    except PermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc)) from exc
    except uploads.UploadUnavailable as exc:
        raise exceptions.APIException(
            "The storage is unavailable; nothing was changed. Try again shortly."
        ) from exc


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
        session = _service_call(
            uploads.upload_start,
            actor=request.user,
            request=uploads.UploadRequest(
                project_id=fields["project"],
                record_id=fields["record"],
                filename=fields["filename"],
                size=fields["size"],
                content_type=fields["content_type"],
                tier=fields["tier"],
                available_date=fields["available_date"],
                sha256=fields["sha256"],
            ),
        )
        return Response(serializers.UploadStartedSerializer(session).data, status=201)


class UploadDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request, upload_id: int):
        session = uploads.upload_session_for(actor=request.user, upload_pk=upload_id)
        _service_call(uploads.upload_abort, session=session)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadPartsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: serializers.StoredPartSerializer(many=True)})
    def get(self, request, upload_id: int):
        session = uploads.upload_session_for(actor=request.user, upload_pk=upload_id)
        parts = _service_call(uploads.upload_parts_list, session=session)
        return Response({"parts": serializers.StoredPartSerializer(parts, many=True).data})

    @extend_schema(
        request=serializers.PartNumbersSerializer,
        responses={200: serializers.PartUrlSerializer(many=True)},
    )
    def post(self, request, upload_id: int):
        session = uploads.upload_session_for(actor=request.user, upload_pk=upload_id)
        data = serializers.PartNumbersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        urls = _service_call(
            uploads.upload_part_urls,
            session=session,
            part_numbers=data.validated_data["part_numbers"],
        )
        return Response(
            {
                "parts": [
                    {"part_number": n, "url": request.build_absolute_uri(url)} for n, url in urls
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
        data_object = _service_call(
            uploads.upload_complete,
            session=session,
            parts=claimed,
            sha256=data.validated_data["sha256"],
        )
        body = serializers.DataObjectSerializer(data_object).data
        return Response({**body, "object_id": data_object.pk})


class NewestFirst(pagination.CursorPagination):
    ordering = "-pk"
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"


class DataObjectListView(generics.ListAPIView):
    serializer_class = serializers.DataObjectSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        return visible_to(self.request.user, Action.VIEW_METADATA).order_by("-pk")


class DataObjectDetailView(generics.RetrieveAPIView):
    serializer_class = serializers.DataObjectSerializer

    def get_object(self):
        return access_data_object(self.request.user, self.kwargs["object_id"], Action.VIEW_METADATA)


@csrf_exempt  # authorised by the signed, expiring token in the URL, like a presigned S3 URL
@require_http_methods(["PUT"])
def part_put(request):
    """The embedded profile's stand-in for S3's UploadPart: write one part under var/."""
    store = FilesystemStore()
    try:
        upload_id, part_number = store.part_token_read(
            request.GET.get("token", ""), settings.KURA_UPLOAD_PART_URL_EXPIRY
        )
    except (signing.BadSignature, KeyError, ValueError):
        return JsonResponse({"detail": "This part URL is invalid or has expired."}, status=403)
    session = (
        UploadSession.objects.select_related("data_object")
        .filter(upload_id=upload_id, completed_at__isnull=True)
        .first()
    )
    if session is None:
        return JsonResponse({"detail": "No such upload."}, status=404)
    try:
        etag = store.part_write(upload_id, part_number, request, max_size=session.part_size)
    except NoSuchUpload:
        return JsonResponse({"detail": "No such upload."}, status=404)
    except StoreError as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    response = HttpResponse(status=200)
    response["ETag"] = f'"{etag}"'
    return response
