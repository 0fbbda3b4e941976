"""What every endpoint of ``/api/v1/`` shares: the error body, pagination, service errors.

Every error answers with one shape (``ERROR_SCHEMA``, documented on every operation)::

    {"status": 400, "code": "invalid", "detail": "size: Ensure this value is ...",
     "errors": {"size": ["Ensure this value is ..."]}}

``detail`` is always one readable sentence; ``errors`` (validation only) maps each field
to its messages, ``non_field_errors`` holding the rest.
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, filters, pagination
from rest_framework.views import exception_handler as drf_exception_handler

RETRY_AFTER_SECONDS = 5  # what a 503 asks the client to wait before trying again


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        return [m for item in value.values() for m in _messages(item)]
    if isinstance(value, list | tuple):
        return [m for item in value for m in _messages(item)]
    return [str(value)]


def _first_code(codes) -> str:
    if isinstance(codes, dict):
        codes = list(codes.values())
    while isinstance(codes, list | tuple) and codes:
        codes = codes[0]
        if isinstance(codes, dict):
            codes = list(codes.values())
    return codes if isinstance(codes, str) and codes else "invalid"


def exception_handler(exc, context):
    """DRF's handler, with every error body in the one shape above."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        parts = []
        for field, value in errors.items():
            text = " ".join(_messages(value))
            parts.append(text if field in ("non_field_errors", "detail") else f"{field}: {text}")
        body = {
            "status": response.status_code,
            "code": _first_code(exc.get_codes()),
            "detail": " ".join(parts) or "Invalid input.",
            "errors": errors,
        }
    else:
        detail = data.get("detail", "") if isinstance(data, dict) else data
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        body = {
            "status": response.status_code,
            "code": _first_code(codes) if codes else _code_for(response.status_code),
            "detail": " ".join(_messages(detail)),
        }
    response.data = body
    if response.status_code == 503:
        response.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return response


def _code_for(status: int) -> str:
    return {404: "not_found", 403: "permission_denied", 405: "method_not_allowed"}.get(
        status, "error"
    )


class Unavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The storage is unavailable; nothing was changed. Try again shortly."
    default_code = "unavailable"


class ServiceUnavailable(Exception):
    """A service the request needs (storage, …) could not be reached; nothing was changed."""


def service_call(function, **kwargs):
    """Run a service, turning its Django errors into DRF's (400 / 403 / 503)."""
    try:
        return function(**kwargs)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        ) from exc
    except PermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc) or None) from exc
    except ServiceUnavailable as exc:
        raise Unavailable() from exc


class StableOrdering(filters.OrderingFilter):
    """``?ordering=`` with the primary key as the last key, so that rows which tie on the
    chosen field keep one order and cursor pages neither skip nor repeat them."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering
        ordering = tuple(ordering)
        if any(field.lstrip("-") in ("pk", "id") for field in ordering):
            return ordering
        return (*ordering, "-pk" if ordering[0].startswith("-") else "pk")


class NewestFirst(pagination.CursorPagination):
    """Cursor pagination (stable under inserts), newest first unless ``?ordering=`` says."""

    ordering = "-pk"
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error of the API has this shape.",
    "properties": {
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "code": {"type": "string", "description": "A stable machine-readable code."},
        "detail": {"type": "string", "description": "One readable sentence."},
        "errors": {
            "type": "object",
            "additionalProperties": {},
            "description": "Validation errors only: the messages of each field.",
        },
    },
    "required": ["status", "code", "detail"],
    "example": {
        "status": 400,
        "code": "invalid",
        "detail": "size: Ensure this value is greater than or equal to 1.",
        "errors": {"size": ["Ensure this value is greater than or equal to 1."]},
    },
}


def document_errors(result, generator, request, public):
    """drf-spectacular hook: every operation documents the one error body, for any 4xx and
    for 503 (storage or another service unreachable; nothing was changed)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in (
                ("4XX", "The request was refused; `code` and `detail` say why."),
                ("503", "A service Kura needs is unreachable; nothing was changed."),
            ):
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result


@csrf_exempt  # nothing here acts; the 404 must not turn into the CSRF page
def not_found(request, *args, **kwargs):
    """Any other path under /api/: the API's 404 body, not the HTML page."""
    from django.http import JsonResponse

    body = {"status": 404, "code": "not_found", "detail": "No such API endpoint or object."}
    return JsonResponse(body, status=404)
