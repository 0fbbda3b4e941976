"""Many uploads in one request: ``POST /api/v1/uploads/batch/`` starts them and
``POST /api/v1/uploads/batch/complete`` completes them (repository/preservation/upload_batch.py).

Each item is validated and answered on its own, with the status and error body it would
have had alone; the request itself answers 200 unless it is malformed as a whole (not a
list, or more than ``KURA_UPLOAD_BATCH_MAX`` items), which is a 400 that starts nothing.
"""

from collections.abc import Iterator

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, fields, permissions
from rest_framework import serializers as drf_serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import exception_handler, service_call
from core.http import client_ip
from repository.api import serializers
from repository.preservation import upload_batch, uploads


def error_body(exc: Exception) -> dict:
    """The API's error body for one item's failure, as the item alone would have had it."""

    def reraise():
        raise exc

    try:
        service_call(reraise)  # Django's errors to DRF's, as for a single request
    except Exception as converted:  # noqa: BLE001 - every item error becomes its body
        response = exception_handler(converted, {})
        if response is None:
            raise
        return response.data
    raise AssertionError("unreachable")


def _items(request, limit: int) -> list:
    """The request's ``uploads`` list; a 400 for the batch if it is not one of 1..limit."""
    items = request.data.get("uploads") if isinstance(request.data, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= limit:
        raise exceptions.ValidationError(
            {
                "uploads": [
                    _("Give a list of 1 to %(max)s uploads.") % {"max": limit},
                ]
            }
        )
    return items


def validated_each(serializer_class, items: list) -> Iterator[tuple[dict | None, dict | None]]:
    """(validated data, None) or (None, errors) for each of ``items``, as
    ``serializer_class(data=item)`` would answer, through one serializer instance (its
    fields are built once, not once per item)."""
    serializer = serializer_class()
    for item in items:
        try:
            yield serializer.run_validation(item), None
        except exceptions.ValidationError as exc:
            yield None, drf_serializers.as_serializer_error(exc)


def _invalid(errors) -> dict:
    return error_body(exceptions.ValidationError(errors))


def _put_body(put) -> dict | None:
    if put is None:
        return None
    return {
        "url": put.url,
        "headers": put.headers,
        "expires_in": settings.KURA_UPLOAD_PART_URL_EXPIRY,
    }


def started_body(request, session, put, *, single_put: bool) -> dict:
    """What POST /uploads/ answers for a started upload: ``put`` (the URL made absolute,
    or null for a file of several parts) only when ``single_put`` was asked, so that the
    answer to every other start is as it always was."""
    body = dict(serializers.UploadStartedSerializer(session).data)
    body.pop("put", None)  # the session has none: the serializer says null
    if not single_put:
        return body
    put_body = _put_body(put)
    if put_body is not None:
        put_body["url"] = request.build_absolute_uri(put_body["url"])
    body["put"] = put_body
    return body


def upload_request(fields: dict) -> uploads.UploadRequest:
    return uploads.UploadRequest(
        project_id=fields["project"],
        record_id=fields["record"],
        filename=fields["filename"],
        size=fields["size"],
        content_type=fields["content_type"],
        tier=fields["tier"],
        available_date=fields["available_date"],
        sha256=fields["sha256"],
        reason=fields["reason"],
        single_put=fields["single_put"],
    )


class UploadBatchStartView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=serializers.UploadBatchStartSerializer,
        responses={200: serializers.UploadBatchStartedSerializer},
        description="Start up to KURA_UPLOAD_BATCH_MAX uploads at once; each item is checked"
        " and answered on its own (status 201, 200 or its error), as POST /uploads/ would.",
    )
    def post(self, request):
        items = _items(request, settings.KURA_UPLOAD_BATCH_MAX)
        skip = fields.BooleanField().to_internal_value(request.data.get("skip_identical", False))
        answers: list[dict | None] = [None] * len(items)
        valid: list[tuple[int, dict]] = []
        checked = validated_each(serializers.UploadStartSerializer, items)
        for index, (validated, errors) in enumerate(checked):
            if errors is None:
                valid.append((index, validated))
            else:
                answers[index] = {"status": 400, "error": _invalid(errors)}
        if valid:
            outcomes = service_call(
                upload_batch.uploads_start_many,
                actor=request.user,
                requests=[upload_request(fields) for _, fields in valid],
                md5s=[fields["md5"] for _, fields in valid],
                skip_identical=skip,
                ip_address=client_ip(request),
            )
            for (index, fields_), outcome in zip(valid, outcomes, strict=True):
                answers[index] = self._answer(request, outcome, single_put=fields_["single_put"])
        return Response({"uploads": answers})

    @staticmethod
    def _answer(request, outcome: upload_batch.StartOutcome, *, single_put: bool) -> dict:
        if outcome.error is not None:
            body = error_body(outcome.error)
            return {"status": body["status"], "error": body}
        if outcome.existing is not None:
            data = serializers.DataObjectSerializer(
                outcome.existing, context={"request": request}
            ).data
            return {"status": 200, "object": data}
        return {
            "status": 201,
            "upload": started_body(request, outcome.session, outcome.put, single_put=single_put),
        }


class UploadBatchCompleteView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=serializers.UploadBatchCompleteSerializer,
        responses={200: serializers.UploadBatchCompletedSerializer},
        description="Complete up to KURA_UPLOAD_BATCH_MAX uploads at once; each is checked"
        " (parts, size, sha256) and answered on its own, as POST /uploads/{id}/complete.",
    )
    def post(self, request):
        items = _items(request, settings.KURA_UPLOAD_BATCH_MAX)
        answers: list[dict | None] = [None] * len(items)
        valid: list[tuple[int, upload_batch.Completion]] = []
        checked = validated_each(serializers.UploadBatchCompletionSerializer, items)
        for index, (item, (claim, errors)) in enumerate(zip(items, checked, strict=True)):
            if errors is None:
                claimed = {p["part_number"]: p["etag"] for p in claim["parts"]}
                completion = upload_batch.Completion(
                    claim["id"], claimed, claim["sha256"], claim["parts_sha256"]
                )
                valid.append((index, completion))
            else:
                given = item.get("id") if isinstance(item, dict) else None
                answers[index] = {
                    # bool is an int to Python, not to JSON: echo only a real integer
                    "id": given if type(given) is int else None,
                    "status": 400,
                    "error": _invalid(errors),
                }
        if valid:
            outcomes = service_call(
                upload_batch.uploads_complete_many,
                actor=request.user,
                completions=[completion for _, completion in valid],
                ip_address=client_ip(request),
            )
            shown = objects_data(request, [o.data_object for o in outcomes if o.error is None])
            for (index, completion), outcome in zip(valid, outcomes, strict=True):
                answer = {"id": completion.upload_pk}
                if outcome.error is not None:
                    body = error_body(outcome.error)
                    answer.update(status=body["status"], error=body)
                else:
                    answer.update(status=200, object=next(shown))
                answers[index] = answer
        return Response({"uploads": answers})


def objects_data(request, data_objects: list) -> Iterator[dict]:
    """The API's body of each of ``data_objects``, in order: one serializer for them all
    (its fields are built once, not once per object)."""
    many = serializers.DataObjectSerializer(data_objects, many=True, context={"request": request})
    return iter(many.data)
