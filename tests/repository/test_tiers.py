"""Tier changes (docs/architecture.md, "Tier changes"): who may ask for what, what is applied at
once and what waits for a curator, what blocks opening, the decision, and the embargo lift.
"""

import datetime
import threading

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository.governance import tiers
from repository.models import AuditEvent, DataObject, RequestStatus, TierChangeRequest
from repository.tasks import embargo_lift_task
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    TierChangeRequestFactory,
    UserFactory,
    make_curator,
    make_superuser,
)

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate
IP = "192.0.2.44"


def in_days(days: int) -> datetime.date:
    return TODAY() + datetime.timedelta(days=days)


class ProjectWithRoles:
    """One project with a member in every role and a verified, shared object."""

    def __init__(self):
        self.project = ProjectFactory()
        self.pm = MembershipFactory(project=self.project, role=Role.PM).user
        self.data_manager = MembershipFactory(project=self.project, role=Role.DATA_MANAGER).user
        self.uploader = MembershipFactory(project=self.project, role=Role.RESEARCHER).user
        self.researcher = MembershipFactory(project=self.project, role=Role.RESEARCHER).user
        self.collaborator = MembershipFactory(project=self.project, role=Role.COLLABORATOR).user
        self.record = DmpRecordFactory(project=self.project)

    def object(self, **fields) -> DataObject:
        values = {
            "project": self.project,
            "record": self.record,
            "uploaded_by": self.uploader,
            "tier": Tier.SHARED,
            "checksum_state": DataObject.ChecksumState.VERIFIED,
            **fields,
        }
        return DataObjectFactory(**values)

    def user(self, role: str):
        if role == "anonymous":
            return AnonymousUser()
        if role == "outsider":
            return UserFactory()
        if role == "curator":
            return make_curator()
        if role == "superuser":
            return make_superuser()
        return getattr(self, role)


@pytest.fixture
def setup():
    return ProjectWithRoles()


def ask(actor, objects, tier, available_date=None, reason="Published with the paper."):
    return tiers.tier_change_request(
        actor=actor,
        data_object_ids=[o.pk for o in objects],
        tier=tier,
        available_date=available_date,
        reason=reason,
        ip_address=IP,
    )


def state(data_object: DataObject) -> tuple:
    data_object.refresh_from_db()
    return data_object.tier, data_object.available_date


def nothing_changed_since(events_before: int, requests_before: int = 0) -> bool:
    return (
        AuditEvent.objects.count() == events_before
        and TierChangeRequest.objects.count() == requests_before
    )


# --- Who may ask for what --------------------------------------------------------------

STEWARDS = ("uploader", "pm", "data_manager", "superuser")
OTHERS = ("researcher", "collaborator", "outsider", "curator", "anonymous")


@pytest.mark.parametrize("role", STEWARDS + OTHERS)
@pytest.mark.parametrize(
    ("tier", "available_in_days", "outcome"),
    [
        (Tier.NON_SHARED, None, "applied"),
        (Tier.EMBARGOED, 30, "requested"),
        (Tier.PUBLIC, None, "requested"),
    ],
)
def test_who_may_change_a_shared_object_and_what_happens(
    setup, role, tier, available_in_days, outcome
):
    data_object = setup.object()
    actor = setup.user(role)
    available_date = in_days(available_in_days) if available_in_days else None

    if role in OTHERS:
        with pytest.raises(PermissionDenied):
            ask(actor, [data_object], tier, available_date)
        assert state(data_object) == (Tier.SHARED, None)
        assert nothing_changed_since(0)
        return

    result = ask(actor, [data_object], tier, available_date)
    if outcome == "applied":
        assert state(data_object) == (tier, None)
        assert result.applied == [data_object] and result.request is None
        event = AuditEvent.objects.get(action=AuditEvent.Action.TIER_CHANGED)
        assert (event.actor, event.ip_address) == (actor, IP)
        assert event.before == {"tier": "shared", "available_date": None}
        assert event.after == {"tier": tier, "available_date": None}
    else:
        assert state(data_object) == (Tier.SHARED, None)  # unchanged until a curator approves
        tier_request = result.request
        assert result.applied == []
        assert tier_request.status == RequestStatus.PENDING
        assert tier_request.requested_tier == tier
        assert tier_request.available_date == available_date
        assert tier_request.requested_by == actor
        assert list(tier_request.data_objects.all()) == [data_object]
        event = AuditEvent.objects.get()
        assert event.action == AuditEvent.Action.TIER_REQUESTED
        assert (event.actor, event.data_object, event.ip_address) == (actor, data_object, IP)
        assert event.after["request"] == tier_request.pk


@pytest.mark.parametrize(("start", "target"), [("non_shared", "shared"), ("shared", "non_shared")])
def test_within_the_project_the_change_is_applied_directly(setup, start, target):
    data_object = setup.object(tier=start)

    result = ask(setup.uploader, [data_object], target, reason="")

    assert state(data_object) == (target, None)
    assert result.request is None
    assert not TierChangeRequest.objects.exists()


@pytest.mark.parametrize(
    ("start", "start_date", "target", "target_date"),
    [
        (Tier.PUBLIC, None, Tier.SHARED, None),
        (Tier.PUBLIC, None, Tier.NON_SHARED, None),
        (Tier.PUBLIC, None, Tier.EMBARGOED, 60),
        (Tier.EMBARGOED, 10, Tier.EMBARGOED, 90),  # a later date is less open
        (Tier.EMBARGOED, 10, Tier.SHARED, None),
    ],
)
def test_making_data_less_open_is_immediate_without_reason_even_with_personal_data(
    setup, start, start_date, target, target_date
):
    data_object = setup.object(
        tier=start,
        available_date=in_days(start_date) if start_date else None,
        contains_personal_data=True,
        checksum_state=DataObject.ChecksumState.FAILED,
    )
    target_day = in_days(target_date) if target_date else None

    result = ask(setup.pm, [data_object], target, target_day, reason="")

    assert state(data_object) == (target, target_day)
    assert result.request is None
    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.TIER_CHANGED
    assert event.before["tier"] == start and event.after["tier"] == target


def test_an_earlier_embargo_date_opens_sooner_and_needs_a_curator(setup):
    data_object = setup.object(tier=Tier.EMBARGOED, available_date=in_days(90))

    result = ask(setup.pm, [data_object], Tier.EMBARGOED, in_days(10))

    assert result.request is not None
    assert state(data_object) == (Tier.EMBARGOED, in_days(90))


# --- Bad input: nothing changes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "available_date", "reason", "field"),
    [
        ("secret", None, "why", "tier"),
        ("", None, "why", "tier"),
        (Tier.EMBARGOED, None, "why", "available_date"),
        (Tier.EMBARGOED, "past", "why", "available_date"),
        (Tier.EMBARGOED, "today", "why", "available_date"),
        (Tier.PUBLIC, None, "", "reason"),
        (Tier.PUBLIC, None, "   ", "reason"),
        (Tier.SHARED, None, "", "tier"),  # already shared
    ],
)
def test_bad_requests_are_refused_by_field_and_change_nothing(
    setup, tier, available_date, reason, field
):
    data_object = setup.object()
    day = {"past": in_days(-1), "today": TODAY(), None: None}[available_date]

    with pytest.raises(ValidationError) as refused:
        ask(setup.uploader, [data_object], tier, day, reason=reason)

    assert field in refused.value.message_dict
    assert state(data_object) == (Tier.SHARED, None)
    assert nothing_changed_since(0)


def test_objects_of_two_projects_cannot_be_changed_together(setup):
    mine = setup.object()
    other = DataObjectFactory(tier=Tier.SHARED)
    MembershipFactory(project=other.project, user=setup.pm, role=Role.PM)

    with pytest.raises(ValidationError) as refused:
        ask(setup.pm, [mine, other], Tier.NON_SHARED)

    assert "data_objects" in refused.value.message_dict
    assert state(mine) == (Tier.SHARED, None) and state(other) == (Tier.SHARED, None)


def test_one_object_the_actor_may_not_edit_refuses_the_whole_batch(setup):
    mine = setup.object()
    someone_elses = setup.object(uploaded_by=setup.researcher)

    with pytest.raises(PermissionDenied):
        ask(setup.uploader, [mine, someone_elses], Tier.NON_SHARED)

    assert state(mine) == (Tier.SHARED, None)
    assert nothing_changed_since(0)


def test_an_object_already_waiting_for_a_curator_cannot_be_requested_again(setup):
    data_object = setup.object()
    first = ask(setup.uploader, [data_object], Tier.PUBLIC).request

    with pytest.raises(ValidationError) as refused:
        ask(setup.pm, [data_object], Tier.EMBARGOED, in_days(30))

    assert f"#{first.pk}" in " ".join(refused.value.message_dict["tier"])
    assert TierChangeRequest.objects.count() == 1


def test_making_an_object_less_open_cancels_the_pending_request_to_open_it(setup):
    data_object = setup.object()
    pending = ask(setup.uploader, [data_object], Tier.PUBLIC).request

    ask(setup.pm, [data_object], Tier.NON_SHARED)

    pending.refresh_from_db()
    assert pending.status == RequestStatus.CANCELLED
    assert pending.decided_by == setup.pm
    assert state(data_object) == (Tier.NON_SHARED, None)
    decided = AuditEvent.objects.get(action=AuditEvent.Action.TIER_DECIDED)
    assert decided.after["status"] == RequestStatus.CANCELLED


@override_settings(KURA_REVIEWED_TIERS=["public"])
def test_only_the_tiers_in_the_setting_wait_for_a_curator(setup):
    data_object = setup.object()

    result = ask(setup.uploader, [data_object], Tier.EMBARGOED, in_days(30), reason="")

    assert result.request is None
    assert state(data_object) == (Tier.EMBARGOED, in_days(30))


# --- What blocks opening ---------------------------------------------------------------


BLOCKERS = {
    "object personal data": (
        {"contains_personal_data": True},
        {},
        "flagged as containing personal data",
    ),
    "record personal data": (
        {},
        {"contains_personal_data": True},
        "DMP record is flagged as containing personal data",
    ),
    "record personal data unknown": (
        {},
        {"contains_personal_data": None},
        "the record's personal-data state is unknown: set it in the DMP first.",
    ),
    "checksum pending": (
        {"checksum_state": DataObject.ChecksumState.PENDING},
        {},
        "checksum is not verified",
    ),
    "checksum failed": (
        {"checksum_state": DataObject.ChecksumState.FAILED},
        {},
        "checksum is not verified",
    ),
    "quarantined": ({"quarantined_at": timezone.now}, {}, "quarantined"),
    "no record": ({"record": None}, {}, "not described by a DMP record"),
    "withdrawn record": ({}, {"withdrawn_at": timezone.now}, "record has been withdrawn"),
}


def _blocked_object(setup, object_fields, record_fields):
    object_fields = {k: v() if callable(v) else v for k, v in object_fields.items()}
    record_fields = {k: v() if callable(v) else v for k, v in record_fields.items()}
    if record_fields:
        setup.record.__dict__.update(record_fields)
        setup.record.save()
    return setup.object(original_filename="patients.csv", **object_fields)


@pytest.mark.parametrize("tier", [Tier.PUBLIC, Tier.EMBARGOED])
@pytest.mark.parametrize("case", BLOCKERS)
def test_opening_is_blocked_with_the_reason_and_the_object_named(setup, case, tier):
    object_fields, record_fields, reason = BLOCKERS[case]
    data_object = _blocked_object(setup, object_fields, record_fields)
    fine = setup.object(record=DmpRecordFactory(project=setup.project))
    available_date = in_days(30) if tier == Tier.EMBARGOED else None

    with pytest.raises(ValidationError) as refused:
        ask(setup.pm, [fine, data_object], tier, available_date)

    (message,) = refused.value.message_dict["tier"]
    assert message.startswith("patients.csv:") and reason in message
    assert state(data_object)[0] == Tier.SHARED and state(fine) == (Tier.SHARED, None)
    assert nothing_changed_since(0)
    assert tiers.tier_change_blockers(data_object, tier=tier, available_date=available_date) == [
        message
    ]


@pytest.mark.parametrize("tier", [Tier.PUBLIC, Tier.NON_SHARED])
@pytest.mark.parametrize("status", [DataObject.Status.UPLOADING, DataObject.Status.ABANDONED])
def test_an_upload_that_never_completed_has_no_tier_to_change(setup, status, tier):
    """An upload in flight is aborted through the upload API, not edited."""
    data_object = setup.object(status=status)

    with pytest.raises(PermissionDenied):
        ask(setup.uploader, [data_object], tier)

    assert state(data_object) == (Tier.SHARED, None)
    assert nothing_changed_since(0)


@pytest.mark.parametrize(
    "case", ["object personal data", "record personal data", "record personal data unknown"]
)
def test_a_record_that_attests_anonymisation_lets_personal_data_be_opened(setup, case):
    object_fields, record_fields, _ = BLOCKERS[case]
    data_object = _blocked_object(
        setup, object_fields, {**record_fields, "anonymisation_attested": True}
    )

    result = ask(setup.pm, [data_object], Tier.PUBLIC)

    assert result.request is not None


def test_personal_data_does_not_block_sharing_within_the_project(setup):
    data_object = setup.object(tier=Tier.NON_SHARED, contains_personal_data=True)

    ask(setup.pm, [data_object], Tier.SHARED)

    assert state(data_object) == (Tier.SHARED, None)


# --- The curator's decision --------------------------------------------------------------


@pytest.fixture
def pending(setup):
    objects = [setup.object(), setup.object(tier=Tier.NON_SHARED)]
    tier_request = ask(setup.uploader, objects, Tier.PUBLIC).request
    return tier_request, objects


def decide(actor, tier_request, approve=True, comment=""):
    return tiers.tier_request_decide(
        actor=actor,
        tier_request_id=tier_request.pk,
        approve=approve,
        comment=comment,
        ip_address=IP,
    )


def test_approval_applies_the_tier_to_all_objects_and_audits_it(setup, pending):
    tier_request, objects = pending
    curator = make_curator()

    decide(curator, tier_request, comment="Fine.")

    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.APPROVED
    assert (tier_request.decided_by, tier_request.decision_comment) == (curator, "Fine.")
    assert tier_request.decided_at is not None
    assert [state(o) for o in objects] == [(Tier.PUBLIC, None)] * 2
    changed = AuditEvent.objects.filter(action=AuditEvent.Action.TIER_CHANGED)
    assert {(e.data_object, e.before["tier"], e.after["tier"]) for e in changed} == {
        (objects[0], "shared", "public"),
        (objects[1], "non_shared", "public"),
    }
    assert {(e.actor, e.ip_address) for e in changed} == {(curator, IP)}
    decided = AuditEvent.objects.filter(action=AuditEvent.Action.TIER_DECIDED)
    assert {e.data_object for e in decided} == set(objects)
    assert {e.after["status"] for e in decided} == {"approved"}


def test_approval_of_an_embargo_sets_the_available_date(setup):
    data_object = setup.object()
    tier_request = ask(setup.pm, [data_object], Tier.EMBARGOED, in_days(45)).request

    decide(make_curator(), tier_request)

    assert state(data_object) == (Tier.EMBARGOED, in_days(45))


def test_approval_is_refused_if_an_object_became_unfit_meanwhile_and_nothing_changes(
    setup, pending
):
    tier_request, objects = pending
    DataObject.objects.filter(pk=objects[1].pk).update(quarantined_at=timezone.now())
    events = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        decide(make_curator(), tier_request)

    assert "quarantined" in " ".join(refused.value.message_dict["decision"])
    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.PENDING
    assert [state(o)[0] for o in objects] == [Tier.SHARED, Tier.NON_SHARED]
    assert AuditEvent.objects.count() == events


def test_rejection_keeps_the_tiers_and_needs_a_comment(setup, pending):
    tier_request, objects = pending
    curator = make_curator()

    with pytest.raises(ValidationError) as refused:
        decide(curator, tier_request, approve=False, comment="  ")
    assert "comment" in refused.value.message_dict
    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.PENDING

    decide(curator, tier_request, approve=False, comment="Contains faces.")

    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.REJECTED
    assert tier_request.decision_comment == "Contains faces."
    assert [state(o)[0] for o in objects] == [Tier.SHARED, Tier.NON_SHARED]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.TIER_CHANGED).exists()


@pytest.mark.parametrize("role", ["uploader", "pm", "data_manager", "outsider", "anonymous"])
def test_only_curators_decide(setup, pending, role):
    tier_request, objects = pending

    with pytest.raises(PermissionDenied):
        decide(setup.user(role), tier_request)

    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.PENDING


def test_staff_outside_the_curator_group_do_not_decide(pending):
    tier_request, _ = pending

    with pytest.raises(PermissionDenied):
        decide(UserFactory(is_staff=True), tier_request)


def test_a_decided_request_cannot_be_decided_again(setup, pending):
    tier_request, objects = pending
    first = make_curator(name_en="Aiko Curator")
    decide(first, tier_request, approve=False, comment="No.")
    events = AuditEvent.objects.count()

    with pytest.raises(tiers.TierRequestAlreadyDecided) as refused:
        decide(make_curator(), tier_request)

    assert "already decided" in refused.value.messages[0]
    assert "Aiko Curator" in refused.value.messages[0]
    assert [state(o)[0] for o in objects] == [Tier.SHARED, Tier.NON_SHARED]
    assert AuditEvent.objects.count() == events


def test_deciding_all_requests_of_a_record_at_once(setup):
    first = ask(setup.uploader, [setup.object()], Tier.PUBLIC).request
    second = ask(setup.pm, [setup.object()], Tier.EMBARGOED, in_days(20)).request
    other_record = DmpRecordFactory(project=setup.project)
    elsewhere = ask(setup.pm, [setup.object(record=other_record)], Tier.PUBLIC).request

    outcome = tiers.tier_requests_decide_for_record(
        actor=make_curator(), record_id=setup.record.pk, approve=False, comment="Not yet."
    )

    assert {r.pk for r in outcome.decided} == {first.pk, second.pk}
    assert outcome.left == []
    statuses = dict(TierChangeRequest.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: RequestStatus.REJECTED,
        second.pk: RequestStatus.REJECTED,
        elsewhere.pk: RequestStatus.PENDING,
    }


def test_approving_all_requests_of_a_record_is_all_or_nothing(setup):
    good = setup.object()
    bad = setup.object()
    first = ask(setup.uploader, [good], Tier.PUBLIC).request
    second = ask(setup.uploader, [bad], Tier.PUBLIC).request
    DataObject.objects.filter(pk=bad.pk).update(checksum_state=DataObject.ChecksumState.FAILED)

    with pytest.raises(ValidationError):
        tiers.tier_requests_decide_for_record(
            actor=make_curator(), record_id=setup.record.pk, approve=True
        )

    assert state(good)[0] == Tier.SHARED
    assert set(
        TierChangeRequest.objects.filter(pk__in=[first.pk, second.pk]).values_list(
            "status", flat=True
        )
    ) == {RequestStatus.PENDING}


def test_deciding_for_a_record_leaves_requests_that_span_other_records(setup):
    other_record = DmpRecordFactory(project=setup.project)
    ours, theirs = setup.object(), setup.object(record=other_record)
    spanning = ask(setup.uploader, [ours, theirs], Tier.PUBLIC).request
    own = ask(setup.uploader, [setup.object()], Tier.PUBLIC).request
    unrecorded = TierChangeRequestFactory(  # one object not yet described: not the record's
        project=setup.project, data_objects=[setup.object(), setup.object(record=None)]
    )

    outcome = tiers.tier_requests_decide_for_record(
        actor=make_curator(), record_id=setup.record.pk, approve=True
    )

    assert [r.pk for r in outcome.decided] == [own.pk]
    assert [r.pk for r in outcome.left] == [spanning.pk, unrecorded.pk]
    statuses = dict(TierChangeRequest.objects.values_list("pk", "status"))
    assert statuses == {
        spanning.pk: RequestStatus.PENDING,
        own.pk: RequestStatus.APPROVED,
        unrecorded.pk: RequestStatus.PENDING,
    }
    assert state(theirs)[0] == Tier.SHARED  # the other record's object is not opened
    assert state(ours)[0] == Tier.SHARED


def test_a_record_with_only_requests_spanning_other_records_is_a_clear_error(setup):
    other_record = DmpRecordFactory(project=setup.project)
    spanning = ask(
        setup.uploader, [setup.object(), setup.object(record=other_record)], Tier.PUBLIC
    ).request
    events = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        tiers.tier_requests_decide_for_record(
            actor=make_curator(), record_id=setup.record.pk, approve=True
        )

    assert f"#{spanning.pk}" in refused.value.message_dict["decision"][0]
    assert "other records" in refused.value.message_dict["decision"][0]
    spanning.refresh_from_db()
    assert spanning.status == RequestStatus.PENDING
    assert AuditEvent.objects.count() == events


def test_a_record_without_pending_requests_is_a_clear_error(setup):
    with pytest.raises(ValidationError) as refused:
        tiers.tier_requests_decide_for_record(
            actor=make_curator(), record_id=setup.record.pk, approve=True
        )
    assert "decision" in refused.value.message_dict


# --- E-mail ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approve", "subject", "intro"),
    [
        (True, "Tier change approved", "the new tier applies now"),
        (False, "Tier change rejected", "the tier is unchanged"),
    ],
)
def test_the_requester_and_the_pm_are_emailed_in_both_languages(
    setup, pending, mailoutbox, django_capture_on_commit_callbacks, approve, subject, intro
):
    tier_request, objects = pending

    with django_capture_on_commit_callbacks(execute=True):
        decide(make_curator(), tier_request, approve=approve, comment="See the policy.")

    (mail,) = mailoutbox
    assert sorted(mail.to) == sorted([setup.uploader.email, setup.pm.email])
    assert subject in mail.subject and f"#{tier_request.pk}" in mail.subject
    japanese, english = mail.body.split("\n\n-----\n\n")
    assert "公開" in japanese  # the requested tier, labelled in Japanese
    assert intro in english
    for part in (japanese, english):
        assert "See the policy." in part
        assert objects[0].original_filename in part
        assert f"/objects/{objects[0].pk}/" in part


def test_no_mail_when_a_decision_is_refused(
    setup, pending, mailoutbox, django_capture_on_commit_callbacks
):
    tier_request, _ = pending
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PermissionDenied):
        decide(setup.pm, tier_request)
    assert mailoutbox == []


# --- Two curators at once ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_curators_deciding_at_once_give_exactly_one_outcome(mailoutbox):
    setup = ProjectWithRoles()
    objects = [setup.object(), setup.object()]
    tier_request = ask(setup.uploader, objects, Tier.PUBLIC).request
    curators = {True: make_curator(), False: make_curator()}
    barrier = threading.Barrier(2)
    results = {}

    def decide_in_own_connection(approve: bool):
        try:
            barrier.wait(timeout=10)
            decide(curators[approve], tier_request, approve=approve, comment="Decided.")
            results[approve] = "decided"
        except tiers.TierRequestAlreadyDecided as exc:
            results[approve] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=decide_in_own_connection, args=(a,)) for a in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(map(type, results.values()), key=str) == sorted(
        [str, tiers.TierRequestAlreadyDecided], key=str
    )
    (winner,) = [approve for approve, result in results.items() if result == "decided"]
    (loser,) = [result for result in results.values() if result != "decided"]
    assert "already decided" in loser.messages[0]
    tier_request.refresh_from_db()
    assert tier_request.status == (RequestStatus.APPROVED if winner else RequestStatus.REJECTED)
    assert tier_request.decided_by == curators[winner]
    decided = AuditEvent.objects.filter(action=AuditEvent.Action.TIER_DECIDED)
    assert decided.count() == 2 and {e.actor for e in decided} == {curators[winner]}
    changed = AuditEvent.objects.filter(action=AuditEvent.Action.TIER_CHANGED).count()
    assert changed == (2 if winner else 0)
    expected_tier = Tier.PUBLIC if winner else Tier.SHARED
    assert [state(o)[0] for o in objects] == [expected_tier] * 2
    assert len(mailoutbox) == 1


# --- Embargo lift -----------------------------------------------------------------------


def test_the_embargo_task_lifts_due_embargoes_once(setup):
    due = setup.object(tier=Tier.EMBARGOED, available_date=in_days(30))
    DataObject.objects.filter(pk=due.pk).update(available_date=TODAY())
    overdue = setup.object(tier=Tier.EMBARGOED, available_date=in_days(30))
    DataObject.objects.filter(pk=overdue.pk).update(available_date=in_days(-3))
    later = setup.object(tier=Tier.EMBARGOED, available_date=in_days(1))

    assert embargo_lift_task() == {"lifted": 2}

    assert state(due) == (Tier.PUBLIC, TODAY())
    assert state(overdue) == (Tier.PUBLIC, in_days(-3))
    assert state(later) == (Tier.EMBARGOED, in_days(1))
    events = AuditEvent.objects.filter(action=AuditEvent.Action.EMBARGO_LIFTED)
    assert {e.data_object for e in events} == {due, overdue}
    assert {(e.actor, e.before["tier"], e.after["tier"]) for e in events} == {
        (None, "embargoed", "public")
    }

    snapshot = list(AuditEvent.objects.values_list("pk", flat=True))
    assert embargo_lift_task() == {"lifted": 0}
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == snapshot
    assert state(later) == (Tier.EMBARGOED, in_days(1))


def test_the_embargo_task_runs_on_the_beat_schedule():
    from django.conf import settings

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "kura.embargo_lift" in tasks


def test_curators_may_download_an_object_while_a_request_on_it_is_pending(setup):
    """Curators may download an object while a request on it is pending (access.py)."""
    from repository.access import Action, can

    data_object = setup.object()
    curator = make_curator()
    assert not can(curator, Action.DOWNLOAD, data_object)
    TierChangeRequestFactory(project=setup.project, data_objects=[data_object])
    assert can(curator, Action.DOWNLOAD, data_object)
