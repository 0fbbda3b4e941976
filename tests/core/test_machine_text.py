"""Sentences Kura writes itself are stored as codes and read in the reader's language;
what people type is kept as typed; older rows written as English sentences are moved."""

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.utils import translation

from core.machine_text import MESSAGES, MachineText, Message, from_english
from core.vocabularies import Tier
from repository.governance import deletion, tiers
from repository.models import AuditEvent, DataObject, FixityCheck, RequestStatus, TierChangeRequest
from repository.preservation.fixity import REASON_SIZE, Reason
from repository.preservation.quarantine import fixity_record
from tests.factories import (
    DataObjectFactory,
    TierChangeRequestFactory,
    make_curator,
)
from tests.repository.test_tiers import ProjectWithRoles

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("repository.migrations.0014_machine_text_codes")
DECISION_MIGRATION = importlib.import_module("repository.migrations.0017_decision_comment_codes")
SIZE_JA = "サイズの不一致：保存されているのは 5 バイトですが、アップロード時の申告は 7 バイトです。"
SIZE_EN = "Size mismatch: 5 bytes are stored, the upload declared 7."
UPLOADED_JA = "ファイルのアップロード時に申請されました。"
UPLOADED_EN = "Requested when the file was uploaded."


def stored(model, field: str, pk: int) -> str:
    """The column as the database holds it, past the model field."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {field} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def put(model, field: str, pk: int, value: str) -> None:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {field} = %s WHERE id = %s", [value, pk])  # noqa: S608


def test_a_message_is_stored_as_its_code_and_read_in_either_language():
    check = FixityCheck.objects.create(
        data_object=DataObjectFactory(),
        outcome=FixityCheck.Outcome.MISMATCH,
        detail=MachineText(Reason(REASON_SIZE, {"stored": 5, "expected": 7})),
    )

    raw = stored(FixityCheck, "detail", check.pk)
    assert raw.startswith("kura:") and "fixity.size_mismatch" in raw
    assert "mismatch:" not in raw  # no English sentence in the row
    check.refresh_from_db()
    with translation.override("ja"):
        assert str(check.detail) == SIZE_JA
    with translation.override("en"):
        assert str(check.detail) == SIZE_EN


def test_the_automatic_upload_reason_reads_in_japanese_on_the_review_page(client):
    data_object = DataObjectFactory()
    tier_request = TierChangeRequestFactory(
        project=data_object.project,
        reason=Message("tier.requested_at_upload"),
        data_objects=[data_object],
    )
    client.force_login(make_curator())

    japanese = client.get(f"/review/{tier_request.pk}/", HTTP_ACCEPT_LANGUAGE="ja")
    english = client.get(f"/review/{tier_request.pk}/", HTTP_ACCEPT_LANGUAGE="en")

    assert UPLOADED_JA in japanese.content.decode()
    assert UPLOADED_EN not in japanese.content.decode()
    assert UPLOADED_EN in english.content.decode()
    api = client.get(f"/api/v1/tier-requests/{tier_request.pk}/", HTTP_ACCEPT_LANGUAGE="ja")
    assert api.json()["reason"] == UPLOADED_JA


def test_fixity_details_read_in_the_readers_language_on_the_object_page(client):
    data_object = DataObjectFactory()
    fixity_record(data_object, None, [Reason(REASON_SIZE, {"stored": 5, "expected": 7})])
    client.force_login(make_curator())

    page = client.get(f"/objects/{data_object.pk}/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert SIZE_JA in page  # the check's detail and the quarantine reason
    assert SIZE_EN not in page
    data_object.refresh_from_db()
    assert stored(DataObject, "quarantine_reason", data_object.pk).startswith("kura:")


@pytest.mark.parametrize("typed", ['kura:[["tier.embargo_lifted", {}]]', "kura:", "plain words"])
def test_typed_text_is_kept_as_typed_even_when_it_looks_like_a_code(typed):
    tier_request = TierChangeRequestFactory(reason=typed)

    tier_request.refresh_from_db()

    with translation.override("en"):
        assert str(tier_request.reason) == typed


def test_a_person_s_words_follow_kura_s_sentence_in_order():
    text = MachineText(Message("fixity.reverify_mismatch"), "Checked twice.")

    with translation.override("en"):
        assert str(text) == "Re-verified at a curator's request: Checked twice."


@pytest.mark.parametrize(
    ("english", "codes"),
    [
        ("Verified after upload.", ["fixity.verified_after_upload"]),
        (
            "Re-verified at a curator's request: " + SIZE_EN,
            ["fixity.reverify_mismatch", "fixity.size_mismatch"],
        ),
        ("Approved request #12.", ["tier.request_approved"]),
        ("Verified after upload, mostly.", None),  # not wholly Kura's: left alone
        ("", None),
    ],
)
def test_older_english_sentences_are_read_back_into_codes(english, codes):
    coded = from_english(english)

    assert (coded.codes if coded is not None else None) == codes
    if coded is not None:
        assert coded.english() == english


def test_the_migration_moves_known_sentences_to_codes_and_leaves_people_s_words():
    data_object = DataObjectFactory()
    automatic = TierChangeRequestFactory(data_objects=[data_object])
    automatic_ja = TierChangeRequestFactory(data_objects=[data_object])
    typed = TierChangeRequestFactory(data_objects=[data_object])
    check = FixityCheck.objects.create(data_object=data_object, outcome="match")
    mixed = FixityCheck.objects.create(data_object=data_object, outcome="mismatch")
    put(TierChangeRequest, "reason", automatic.pk, UPLOADED_EN)
    put(TierChangeRequest, "reason", automatic_ja.pk, UPLOADED_JA)
    put(TierChangeRequest, "reason", typed.pk, "For the paper in Nature.")
    put(FixityCheck, "detail", check.pk, "Read back from storage when the demo data was loaded.")
    odd = "Re-verified at a curator's request: looks odd"
    put(FixityCheck, "detail", mixed.pk, odd)
    put(DataObject, "quarantine_reason", data_object.pk, SIZE_EN)

    MIGRATION.to_codes(apps, None)

    for model, field, pk in [
        (TierChangeRequest, "reason", automatic.pk),
        (TierChangeRequest, "reason", automatic_ja.pk),
        (FixityCheck, "detail", check.pk),
        (DataObject, "quarantine_reason", data_object.pk),
    ]:
        assert stored(model, field, pk).startswith("kura:[[")
    assert stored(TierChangeRequest, "reason", typed.pk) == "For the paper in Nature."
    assert stored(FixityCheck, "detail", mixed.pk) == odd
    automatic_ja.refresh_from_db()
    with translation.override("en"):
        assert str(automatic_ja.reason) == UPLOADED_EN
    with translation.override("ja"):
        assert str(TierChangeRequest.objects.get(pk=automatic.pk).reason) == UPLOADED_JA

    MIGRATION.to_english(apps, None)  # and back

    assert stored(TierChangeRequest, "reason", automatic.pk) == UPLOADED_EN
    assert stored(DataObject, "quarantine_reason", data_object.pk) == SIZE_EN


# --- Requests Kura cancels itself -----------------------------------------------------------

NAME = "field notes, day 1.csv"  # a name with a space and a comma, as people write them


def _make_less_open(roles: ProjectWithRoles, data_object: DataObject) -> None:
    tiers.tier_change_request(
        actor=roles.pm, data_object_ids=[data_object.pk], tier=Tier.NON_SHARED, reason=""
    )


def _delete(roles: ProjectWithRoles, data_object: DataObject) -> None:
    deletion.data_object_delete(actor=roles.pm, data_object_id=data_object.pk)


@pytest.mark.parametrize(
    ("cancel", "code", "values"),
    [
        (_make_less_open, "tier.cancelled_tier_changed", {"names": NAME}),
        (_delete, "tier.cancelled_object_deleted", {"name": NAME}),
    ],
)
def test_a_request_kura_cancels_says_why_in_the_readers_language(client, cancel, code, values):
    roles = ProjectWithRoles()
    data_object = roles.object(original_filename=NAME)
    tier_request = tiers.tier_change_request(
        actor=roles.uploader, data_object_ids=[data_object.pk], tier=Tier.PUBLIC, reason="Paper."
    ).request

    cancel(roles, data_object)

    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.CANCELLED
    raw = stored(TierChangeRequest, "decision_comment", tier_request.pk)
    assert raw.startswith("kura:") and code in raw and "Cancelled:" not in raw
    event = AuditEvent.objects.get(action=AuditEvent.Action.TIER_DECIDED)
    assert code in stored(AuditEvent, "detail", event.pk)
    english = MESSAGES[code] % values
    assert english.startswith("Cancelled: ") and NAME in english
    with translation.override("ja"):
        japanese = translation.gettext(MESSAGES[code]) % values
        assert str(tier_request.decision_comment) == japanese
        assert str(event.detail) == japanese
    client.force_login(make_curator())
    page = client.get(f"/review/{tier_request.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert english in page.content.decode()
    api = client.get(f"/api/v1/tier-requests/{tier_request.pk}/", HTTP_ACCEPT_LANGUAGE="ja")
    assert api.json()["decision_comment"] == japanese


def test_the_migration_moves_kuras_cancellations_to_codes_and_leaves_deciders_words():
    data_object = DataObjectFactory()
    changed = TierChangeRequestFactory(data_objects=[data_object])
    deleted = TierChangeRequestFactory(data_objects=[data_object])
    typed = TierChangeRequestFactory(data_objects=[data_object])
    look_alike = TierChangeRequestFactory(data_objects=[data_object])
    changed_en = f"Cancelled: the access tier was changed directly ({NAME}, b (2).csv)."
    deleted_en = f"Cancelled: the object was deleted ({NAME})."
    put(TierChangeRequest, "decision_comment", changed.pk, changed_en)
    put(TierChangeRequest, "decision_comment", deleted.pk, deleted_en)
    put(TierChangeRequest, "decision_comment", typed.pk, "Contains faces.")
    look_alike_en = "Cancelled: the object was deleted (x.csv). We asked again."
    put(TierChangeRequest, "decision_comment", look_alike.pk, look_alike_en)

    DECISION_MIGRATION.to_codes(apps, None)

    assert stored(TierChangeRequest, "decision_comment", changed.pk).startswith("kura:[[")
    assert stored(TierChangeRequest, "decision_comment", deleted.pk).startswith("kura:[[")
    assert TierChangeRequest.objects.get(pk=changed.pk).decision_comment.parts == (
        Message("tier.cancelled_tier_changed", {"names": f"{NAME}, b (2).csv"}),
    )
    assert stored(TierChangeRequest, "decision_comment", typed.pk) == "Contains faces."
    assert stored(TierChangeRequest, "decision_comment", look_alike.pk) == look_alike_en

    DECISION_MIGRATION.to_english(apps, None)  # and back

    assert stored(TierChangeRequest, "decision_comment", changed.pk) == changed_en
    assert stored(TierChangeRequest, "decision_comment", deleted.pk) == deleted_en
