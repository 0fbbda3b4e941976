import datetime

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts.models import Project
from core.vocabularies import Tier
from repository.access import Action, visible_to
from repository.models import (
    AccessRequest,
    AuditEvent,
    DataObject,
    Integrity,
    TierChangeRequest,
)
from repository.preservation.object_store import content_md5_valid

SHA256_EXAMPLE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A sequencing run into a record",
            value={
                "project": 12,
                "record": 345,
                "filename": "run42_R1.fastq.gz",
                "size": 5_368_709_120,
                "content_type": "application/gzip",
                "tier": "shared",
                "sha256": SHA256_EXAMPLE,
            },
            request_only=True,
        ),
        OpenApiExample(
            "An image opening later (asks a curator)",
            value={
                "project": 12,
                "filename": "slide-0001.ome.tif",
                "size": 734_003_200,
                "tier": "embargoed",
                "available_date": "2027-04-01",
            },
            request_only=True,
        ),
    ]
)
class UploadStartSerializer(serializers.Serializer):
    project = serializers.IntegerField(min_value=1)
    record = serializers.IntegerField(min_value=1, allow_null=True, required=False, default=None)
    filename = serializers.CharField(max_length=4096, trim_whitespace=False)
    size = serializers.IntegerField()
    content_type = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default=""
    )
    tier = serializers.ChoiceField(choices=Tier.choices, default=Tier.NON_SHARED)
    available_date = serializers.DateField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=5000,
        help_text="Why the file should be opened: required for a tier a curator reviews"
        " (`public`, `embargoed`); the curator reads it with the request made at completion.",
    )
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", required=False, allow_blank=True, default=""
    )
    single_put = serializers.BooleanField(
        required=False,
        default=False,
        help_text="For a file of one part (at most the part size, 8 MiB): answer the one URL"
        " to PUT the whole file to (`put`), so that no part needs signing. On S3 it is a"
        " PutObject URL that writes the key once only.",
    )
    md5 = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=24,
        help_text="With single_put: the file's MD5, base64 (as in a Content-MD5 header),"
        " signed into the PUT URL; the store then refuses any other bytes.",
    )

    def validate_md5(self, value):
        if value and not content_md5_valid(value):
            raise serializers.ValidationError("Give the file's MD5 digest in base64 (16 bytes).")
        return value


class PutUrlSerializer(serializers.Serializer):
    url = serializers.CharField()
    headers = serializers.DictField(
        child=serializers.CharField(),
        help_text="Headers the PUT must carry exactly (Content-MD5, If-None-Match).",
    )
    expires_in = serializers.IntegerField(help_text="Seconds the URL stays valid.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Started",
            value={
                "id": 88,
                "object_id": 1201,
                "part_size": 67_108_864,
                "part_count": 80,
                "put": None,
            },
            response_only=True,
        ),
        OpenApiExample(
            "A small file, sent with one PUT",
            value={
                "id": 89,
                "object_id": 1202,
                "part_size": 8_388_608,
                "part_count": 1,
                "put": {
                    "url": "https://s3.example.jp/kura/objects/ab/abd?X-Amz-Signature=...",
                    "headers": {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "If-None-Match": "*"},
                    "expires_in": 900,
                },
            },
            response_only=True,
        ),
    ]
)
class UploadStartedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    object_id = serializers.IntegerField(source="data_object_id")
    part_size = serializers.IntegerField()
    part_count = serializers.IntegerField()
    put = PutUrlSerializer(
        allow_null=True,
        required=False,
        help_text="Only when single_put was asked. For a one-part file: PUT the whole file"
        " here, then complete with part 1 and the ETag the PUT answered; null for a file of"
        " several parts (sign them as usual).",
    )


class PartToSignSerializer(serializers.Serializer):
    part_number = serializers.IntegerField()
    md5 = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=24,
        help_text="The part's MD5, base64 (as in a Content-MD5 header). The URL is then valid"
        " only with that header, and the store refuses any other bytes.",
    )

    def validate_md5(self, value):
        if value and not content_md5_valid(value):
            raise serializers.ValidationError("Give the part's MD5 digest in base64 (16 bytes).")
        return value


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Sign parts 1-2 with their MD5s",
            value={
                "parts": [
                    {"part_number": 1, "md5": "1B2M2Y8AsgTpgAmY7PhCfg=="},
                    {"part_number": 2, "md5": "XrY7u+Ae7tCTyyK7j1rNww=="},
                ]
            },
            request_only=True,
        ),
        OpenApiExample("Sign parts 1-3", value={"part_numbers": [1, 2, 3]}, request_only=True),
    ]
)
class PartNumbersSerializer(serializers.Serializer):
    """Either ``part_numbers`` or ``parts`` (with each part's MD5: end-to-end integrity)."""

    part_numbers = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=1000, required=False
    )
    parts = PartToSignSerializer(many=True, required=False, max_length=1000)

    def validate(self, attrs):
        numbers = attrs.get("part_numbers")
        parts = attrs.get("parts")
        if bool(numbers) == bool(parts):
            raise serializers.ValidationError(
                {"parts": ["Give either part_numbers or parts (not both, not neither)."]}
            )
        if parts:
            numbers = [p["part_number"] for p in parts]
            if len(set(numbers)) != len(numbers):
                raise serializers.ValidationError({"parts": ["Each part number may appear once."]})
            attrs["part_numbers"] = numbers
            attrs["md5s"] = {p["part_number"]: p["md5"] for p in parts if p.get("md5")}
        else:
            attrs["md5s"] = {}
        return attrs


class PartUrlSerializer(serializers.Serializer):
    part_number = serializers.IntegerField()
    url = serializers.CharField()
    headers = serializers.DictField(
        child=serializers.CharField(),
        help_text="Headers the PUT must carry exactly (Content-MD5 when an MD5 was given).",
    )


class StoredPartSerializer(serializers.Serializer):
    part_number = serializers.IntegerField()
    size = serializers.IntegerField()
    etag = serializers.CharField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two parts stored so far",
            value={
                "parts": [
                    {"part_number": 1, "size": 67_108_864, "etag": '"a54357aff0632cce"'},
                    {"part_number": 2, "size": 67_108_864, "etag": '"0c78aef83f66abc1"'},
                ]
            },
            response_only=True,
        )
    ]
)
class StoredPartsSerializer(serializers.Serializer):
    parts = StoredPartSerializer(many=True)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Signed URLs",
            value={
                "parts": [
                    {
                        "part_number": 1,
                        "url": "https://s3.example.jp/kura/objects/ab/abc?partNumber=1&X-Amz-Signature=...",
                        "headers": {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="},
                    }
                ],
                "expires_in": 900,
            },
            response_only=True,
        )
    ]
)
class PartUrlsSerializer(serializers.Serializer):
    parts = PartUrlSerializer(many=True)
    expires_in = serializers.IntegerField(help_text="Seconds the URLs stay valid.")


class CompletedPartSerializer(serializers.Serializer):
    part_number = serializers.IntegerField(min_value=1)
    etag = serializers.CharField(max_length=200)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two parts",
            value={
                "parts": [
                    {"part_number": 1, "etag": '"a54357aff0632cce46d942af68356b38"'},
                    {"part_number": 2, "etag": '"0c78aef83f66abc1fa1e8477f296d394"'},
                ]
            },
            request_only=True,
        )
    ]
)
class CompleteSerializer(serializers.Serializer):
    parts = CompletedPartSerializer(many=True, allow_empty=False, max_length=10_000)
    # The uploader's SHA-256, for a client that hashes while it sends (cross-checked later).
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", required=False, allow_blank=True, default=""
    )
    parts_sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$",
        required=False,
        allow_blank=True,
        default="",
        help_text="Instead of sha256: the SHA-256 of the parts' SHA-256 digests (32 bytes"
        " each, in part order, each part part_size bytes but the last), as a browser computes"
        " it; cross-checked against the stored bytes as sha256 is.",
    )

    def validate_parts(self, parts):
        numbers = [p["part_number"] for p in parts]
        if len(numbers) != len(set(numbers)):
            raise serializers.ValidationError("Each part number may appear once.")
        return parts

    def validate(self, attrs):
        if attrs.get("sha256") and attrs.get("parts_sha256"):
            raise serializers.ValidationError(
                {"parts_sha256": "Send either sha256 or parts_sha256, not both."}
            )
        return attrs


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A verified object",
            value={
                "id": 1201,
                "project": 12,
                "record": 345,
                "filename": "run42_R1.fastq.gz",
                "size": 5_368_709_120,
                "content_type": "application/gzip",
                "tier": "shared",
                "available_date": None,
                "status": "stored",
                "checksum_state": "verified",
                "checksum_progress": 100,
                "sha256": SHA256_EXAMPLE,
                "md5": "098f6bcd4621d373cade4e832627b4f6",
                "integrity": "end_to_end",
                "duplicate_of": None,
                "quarantined_at": None,
                "technical_metadata": {"format": "FASTQ", "reads_sampled": 1000},
                "contains_personal_data": False,
                "created_at": "2026-10-01T09:30:00+09:00",
                "stored_at": "2026-10-01T09:42:10+09:00",
            },
            response_only=True,
        )
    ]
)
class DataObjectSerializer(serializers.ModelSerializer):
    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_duplicate_of(self, data_object) -> int | None:
        request = self.context.get("request")
        if not data_object.duplicate_of_id or request is None:
            return None
        original = visible_to(request.user, Action.VIEW_METADATA).filter(
            pk=data_object.duplicate_of_id
        )
        return data_object.duplicate_of_id if original.exists() else None

    filename = serializers.CharField(source="original_filename")
    duplicate_of = serializers.SerializerMethodField(
        help_text="An object of the same record that already held these bytes when this one"
        " was verified (the uploader may keep both or delete this copy), else null; given"
        " only to callers who may see that object.",
    )
    integrity = serializers.ChoiceField(
        choices=Integrity.choices,
        allow_null=True,
        help_text="end_to_end: verified, and the uploader's SHA-256 matched the stored bytes;"
        " at_rest: verified from the stored bytes only (no digest was sent); null while not"
        " verified.",
    )
    preview_state = serializers.ChoiceField(
        choices=DataObject.PreviewState.choices,
        help_text="The preview made after verification (a thumbnail and deep-zoom tiles of an"
        " image, a summary of FASTQ or BAM): none (a format Kura does not preview), pending,"
        " ready, failed, or skipped (too large to preview). The object page shows it.",
    )

    class Meta:
        model = DataObject
        fields = [
            "id",
            "project",
            "record",
            "filename",
            "size",
            "content_type",
            "tier",
            "available_date",
            "status",
            "checksum_state",
            "checksum_progress",
            "sha256",
            "md5",
            "integrity",
            "duplicate_of",
            "quarantined_at",
            "technical_metadata",
            "preview_state",
            "contains_personal_data",
            "created_at",
            "stored_at",
        ]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A Moonshot project",
            value={
                "id": 12,
                "name_ja": "農地土壌メタンの削減",
                "name_en": "Reducing methane from farmland soil",
                "institution": 3,
                "institution_name": "Kura Research Institute",
                "funder": "JST",
                "funding_stream_code": "MJMS",
                "program_name_ja": "ムーンショット型研究開発事業",
                "program_name_en": "Moonshot Research and Development Program",
                "japan_grant_number": "JPMJMS2021",
                "research_field": "189",
                "created_at": "2025-04-01T10:00:00+09:00",
            },
            response_only=True,
        )
    ]
)
class ProjectSerializer(serializers.ModelSerializer):
    institution_name = serializers.CharField(source="institution.name", read_only=True)

    class Meta:
        model = Project
        fields = [
            "id",
            "name_ja",
            "name_en",
            "institution",
            "institution_name",
            "funder",
            "funding_stream_code",
            "program_name_ja",
            "program_name_en",
            "japan_grant_number",
            "research_field",
            "created_at",
        ]
        read_only_fields = fields


TIER_REQUEST_EXAMPLE = {
    "id": 57,
    "project": 12,
    "data_objects": [1201, 1202],
    "requested_by": 8,
    "requested_tier": "public",
    "available_date": None,
    "reason": "The paper is accepted; the data supports figure 3.",
    "status": "pending",
    "created_at": "2026-11-20T10:00:00+09:00",
    "decided_by": None,
    "decided_at": None,
    "decision_comment": "",
}


@extend_schema_serializer(
    examples=[OpenApiExample("A pending request", value=TIER_REQUEST_EXAMPLE, response_only=True)]
)
class TierRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = TierChangeRequest
        fields = [
            "id",
            "project",
            "data_objects",
            "requested_by",
            "requested_tier",
            "available_date",
            "reason",
            "status",
            "created_at",
            "decided_by",
            "decided_at",
            "decision_comment",
        ]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Open two files",
            value={
                "data_objects": [1201, 1202],
                "tier": "public",
                "reason": "The paper is accepted; the data supports figure 3.",
            },
            request_only=True,
        ),
        OpenApiExample(
            "Share within the project (applied at once)",
            value={"data_objects": [1203], "tier": "shared"},
            request_only=True,
        ),
    ]
)
class TierChangeSerializer(serializers.Serializer):
    data_objects = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000
    )
    tier = serializers.ChoiceField(choices=Tier.choices)
    available_date = serializers.DateField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Sent to a curator",
            value={"applied": [], "request": TIER_REQUEST_EXAMPLE},
            response_only=True,
        ),
        OpenApiExample(
            "Applied at once", value={"applied": [1203], "request": None}, response_only=True
        ),
    ]
)
class TierChangeOutcomeSerializer(serializers.Serializer):
    applied = serializers.ListField(
        child=serializers.IntegerField(), help_text="Objects whose tier changed now."
    )
    request = TierRequestSerializer(
        allow_null=True, help_text="The request a curator decides, for the rest."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Approve", value={"approve": True, "comment": "Checked."}, request_only=True
        ),
        OpenApiExample(
            "Reject",
            value={"approve": False, "comment": "The record flags personal data."},
            request_only=True,
        ),
    ]
)
class DecisionSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


ACCESS_REQUEST_EXAMPLE = {
    "id": 31,
    "record": 345,
    "requester": 40,
    "purpose": "Re-analysis of methane flux for a meta-study (JSPS 25K00001).",
    "status": "approved",
    "created_at": "2026-11-02T09:00:00+09:00",
    "decided_by": 7,
    "decided_at": "2026-11-03T14:00:00+09:00",
    "decision_comment": "",
    "grant_expires_at": "2027-02-01T23:59:59.999999+09:00",
}


@extend_schema_serializer(
    examples=[OpenApiExample("Approved", value=ACCESS_REQUEST_EXAMPLE, response_only=True)]
)
class AccessRequestSerializer(serializers.ModelSerializer):
    grant_expires_at = serializers.SerializerMethodField(
        help_text="When the grant made on approval expires (null while pending or rejected)."
    )

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "record",
            "requester",
            "purpose",
            "status",
            "created_at",
            "decided_by",
            "decided_at",
            "decision_comment",
            "grant_expires_at",
        ]
        read_only_fields = fields

    def get_grant_expires_at(self, obj) -> datetime.datetime | None:
        grant = getattr(obj, "grant", None)
        return grant.expires_at if grant is not None else None


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Ask for a record's shared files",
            value={
                "record": 345,
                "purpose": "Re-analysis of methane flux for a meta-study (JSPS 25K00001).",
            },
            request_only=True,
        )
    ]
)
class AccessRequestCreateSerializer(serializers.Serializer):
    record = serializers.IntegerField(min_value=1)
    purpose = serializers.CharField(max_length=5000)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Approve until a date",
            value={"approve": True, "expires_on": "2027-02-01", "comment": ""},
            request_only=True,
        ),
        OpenApiExample(
            "Reject",
            value={"approve": False, "comment": "The data contains unpublished results."},
            request_only=True,
        ),
    ]
)
class AccessDecisionSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    expires_on = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Approval only: last day."
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A tier change",
            value={
                "id": 9001,
                "occurred_at": "2026-11-20T10:05:00+09:00",
                "actor": 5,
                "action": "tier_changed",
                "project": 12,
                "data_object": 1201,
                "record": 345,
                "before": {"tier": "shared"},
                "after": {"tier": "public"},
                "ip_address": "192.0.2.10",
                "detail": "Approved tier change request #57.",
            },
            response_only=True,
        )
    ]
)
class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "action",
            "project",
            "data_object",
            "record",
            "before",
            "after",
            "ip_address",
            "detail",
        ]
        read_only_fields = fields


# --- Many uploads in one request (repository/preservation/upload_batch.py)
# -----------------------------


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two small files, skipping those Kura already holds",
            value={
                "skip_identical": True,
                "uploads": [
                    {
                        "project": 12,
                        "record": 345,
                        "filename": "plate01__A01.tif",
                        "size": 1_048_576,
                        "content_type": "image/tiff",
                        "tier": "shared",
                        "sha256": SHA256_EXAMPLE,
                        "md5": "1B2M2Y8AsgTpgAmY7PhCfg==",
                        "single_put": True,
                    },
                    {
                        "project": 12,
                        "record": 345,
                        "filename": "plate01__A02.tif",
                        "size": 1_048_576,
                        "content_type": "image/tiff",
                        "tier": "shared",
                        "sha256": "60303ae22b998861bce3b28f33eec1be"
                        "758a213c86c93c076dbe9f558c11c752",
                        "md5": "XrY7u+Ae7tCTyyK7j1rNww==",
                        "single_put": True,
                    },
                ],
            },
            request_only=True,
        )
    ]
)
class UploadBatchStartSerializer(serializers.Serializer):
    """Each item is validated on its own: a malformed item is refused alone (its own 400)."""

    skip_identical = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Answer 200 with the existing object, instead of starting an upload, for a"
        " file Kura already holds: a verified object you can see in the same project and"
        " record with the same name, size and sha256 (items without a sha256 never match).",
    )
    uploads = UploadStartSerializer(
        many=True, help_text="1 to KURA_UPLOAD_BATCH_MAX (100) uploads, as POST /uploads/ takes."
    )


class BatchErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(required=False)


class UploadBatchStartedItemSerializer(serializers.Serializer):
    status = serializers.IntegerField(
        help_text="201 started (see upload), 200 already held (see object), else the error's"
        " status (see error): 400 refused, 403 no permission, 503 storage away (try again)."
    )
    upload = UploadStartedSerializer(required=False)
    object = serializers.DictField(
        required=False, help_text="The object that already holds these bytes (as GET /objects/)."
    )
    error = BatchErrorSerializer(required=False)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "One started, one already held, one refused",
            value={
                "uploads": [
                    {
                        "status": 201,
                        "upload": {
                            "id": 89,
                            "object_id": 1202,
                            "part_size": 8_388_608,
                            "part_count": 1,
                            "put": {
                                "url": "https://s3.example.jp/kura/objects/ab/abd?X-Amz-Signature=...",
                                "headers": {
                                    "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
                                    "If-None-Match": "*",
                                },
                                "expires_in": 900,
                            },
                        },
                    },
                    {"status": 200, "object": {"id": 1187, "filename": "plate01__A02.tif"}},
                    {
                        "status": 400,
                        "error": {
                            "status": 400,
                            "code": "invalid",
                            "detail": "filename: The file name must not contain a path.",
                            "errors": {"filename": ["The file name must not contain a path."]},
                        },
                    },
                ]
            },
            response_only=True,
        )
    ]
)
class UploadBatchStartedSerializer(serializers.Serializer):
    uploads = UploadBatchStartedItemSerializer(
        many=True, help_text="One answer per item, in order."
    )


class UploadBatchCompletionSerializer(CompleteSerializer):
    id = serializers.IntegerField(min_value=1, help_text="The upload to complete.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two one-PUT uploads",
            value={
                "uploads": [
                    {
                        "id": 89,
                        "parts": [{"part_number": 1, "etag": '"a54357aff0632cce46d942af68356b38"'}],
                        "sha256": SHA256_EXAMPLE,
                    },
                    {
                        "id": 90,
                        "parts": [{"part_number": 1, "etag": '"0c78aef83f66abc1fa1e8477f296d394"'}],
                    },
                ]
            },
            request_only=True,
        )
    ]
)
class UploadBatchCompleteSerializer(serializers.Serializer):
    """Each item is validated on its own: a malformed item is refused alone (its own 400)."""

    uploads = UploadBatchCompletionSerializer(
        many=True, help_text="1 to KURA_UPLOAD_BATCH_MAX (100) completions."
    )


class UploadBatchCompletedItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="The upload, as given.")
    status = serializers.IntegerField(
        help_text="200 completed (see object; its checksum is queued), else the error's status"
        " (see error): 400 refused (parts, size, sha256), 404 not your upload, 503 try again."
    )
    object = DataObjectSerializer(required=False)
    error = BatchErrorSerializer(required=False)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "One completed, one refused",
            value={
                "uploads": [
                    {
                        "id": 89,
                        "status": 200,
                        "object": {
                            "id": 1202,
                            "filename": "plate01__A01.tif",
                            "size": 1_048_576,
                            "status": "stored",
                            "checksum_state": "pending",
                        },
                    },
                    {
                        "id": 90,
                        "status": 400,
                        "error": {
                            "status": 400,
                            "code": "invalid",
                            "detail": "part 1 has a different ETag",
                            "errors": {"parts": ["part 1 has a different ETag"]},
                        },
                    },
                ]
            },
            response_only=True,
        )
    ]
)
class UploadBatchCompletedSerializer(serializers.Serializer):
    uploads = UploadBatchCompletedItemSerializer(
        many=True, help_text="One answer per item, in order."
    )
