"""One request-and-decision workflow (docs/architecture.md, "Requests, decisions, audit and
notification"): tier change requests and access requests are decided, cancelled, audited and
notified by repository.governance.decisions, and their e-mails are templates sent by the kura.notify
task once the decision commits.
"""

import datetime
import smtplib

import pytest
from django.core import mail
from django.db import transaction
from django.test.signals import template_rendered
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository.governance import decisions, grants, notify, tiers
from repository.models import AccessRequest, AuditEvent, DataObject, RequestStatus
from repository.tasks import notify_task
from tests.factories import (
    DataObjectFactory,
    MembershipFactory,
    TierChangeRequestFactory,
    make_curator,
    queued_work,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def tier_request(shared):
    """A pending request to make the shared object public, asked by a researcher."""
    researcher = MembershipFactory(project=shared["project"], role=Role.RESEARCHER).user
    data_object = DataObjectFactory(
        project=shared["project"],
        record=shared["record"],
        uploaded_by=researcher,
        tier=Tier.SHARED,
        checksum_state=DataObject.ChecksumState.VERIFIED,
    )
    return TierChangeRequestFactory(
        project=shared["project"], requested_by=researcher, data_objects=[data_object]
    )


@pytest.fixture
def access_request(shared, outsider):
    return AccessRequest.objects.create(
        record=shared["record"], requester=outsider, purpose="Meta-analysis."
    )


def decide_tier(tier_request, approve=True, curator=None):
    return tiers.tier_request_decide(
        actor=curator or make_curator(),
        tier_request_id=tier_request.pk,
        approve=approve,
        comment="See the policy.",
    )


def decide_access(shared, access_request, approve=True):
    if approve:
        return grants.access_request_approve(
            actor=shared["pm"],
            project=shared["project"],
            access_request_id=access_request.pk,
            expires_on=timezone.localdate() + datetime.timedelta(days=7),
        )
    return grants.access_request_reject(
        actor=shared["pm"],
        project=shared["project"],
        access_request_id=access_request.pk,
        comment="Consent does not cover it.",
    )


# --- One workflow ---------------------------------------------------------------------------


def test_both_kinds_refuse_a_second_decision_with_the_same_error(
    shared, tier_request, access_request
):
    decide_tier(tier_request, approve=False)
    decide_access(shared, access_request, approve=False)

    with pytest.raises(decisions.RequestAlreadyDecided) as tier_refused:
        decide_tier(tier_request)
    with pytest.raises(decisions.RequestAlreadyDecided) as access_refused:
        decide_access(shared, access_request)

    assert tiers.TierRequestAlreadyDecided is decisions.RequestAlreadyDecided
    # Each kind still says it in its own words.
    (tier_message,) = tier_refused.value.messages
    assert tier_message.startswith(f"Request #{tier_request.pk} was already decided (rejected by")
    assert access_refused.value.messages == ["This request has already been decided (Rejected)."]


def test_both_kinds_record_a_decision_in_the_same_fields(shared, tier_request, access_request):
    curator = make_curator()
    decide_tier(tier_request, curator=curator)
    decide_access(shared, access_request)

    for decided, decider in ((tier_request, curator), (access_request, shared["pm"])):
        decided.refresh_from_db()
        assert decided.status == RequestStatus.APPROVED
        assert decided.decided_by == decider
        assert decided.decided_at is not None
    assert tier_request.asked_by == tier_request.requested_by
    assert access_request.asked_by == access_request.requester


def test_a_direct_change_cancels_a_tier_request_through_the_workflow(shared, tier_request):
    (data_object,) = tier_request.data_objects.all()

    tiers.tier_change_request(
        actor=shared["pm"], data_object_ids=[data_object.pk], tier=Tier.NON_SHARED
    )

    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.CANCELLED
    assert tier_request.decided_by == shared["pm"]
    assert tier_request.decided_at is not None
    event = AuditEvent.objects.get(action=AuditEvent.Action.TIER_DECIDED)
    assert event.after == {"request": tier_request.pk, "status": "cancelled", "tier": "public"}
    with pytest.raises(decisions.RequestAlreadyDecided):
        decide_tier(tier_request)


def test_cancel_serves_an_access_request_too_and_tells_nobody(
    access_request, django_capture_on_commit_callbacks
):
    audited = []
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        locked = decisions.pending_request_lock(
            AccessRequest.objects,
            access_request.pk,
            actor=None,
            refusal=lambda actor, request: None,
            missing="No such access request.",
        )
        decisions.request_cancel(locked, actor=None, comment="Withdrawn.", audit=audited.append)

    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.CANCELLED
    assert access_request.decision_comment == "Withdrawn."
    assert access_request.decided_by is None
    assert audited == [locked]
    assert queued_work(callbacks) == []


# --- E-mail: templates, task, commit ---------------------------------------------------------


@pytest.fixture
def rendered():
    names = []

    def record(sender, template, context, **kwargs):
        names.append(template.name)

    template_rendered.connect(record)
    yield names
    template_rendered.disconnect(record)


def test_the_texts_are_templates_rendered_in_japanese_and_english(
    shared, tier_request, access_request, rendered, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        decide_tier(tier_request)
        decide_access(shared, access_request, approve=False)

    tier_mail, access_mail = mail.outbox
    assert rendered == [
        f"email/{notice}/{part}.txt"
        for notice in ("tier_decided", "access_decided")
        for _language in ("ja", "en")
        for part in ("subject", "body")
    ]
    assert tier_mail.subject == (
        f"[Kura] 公開区分の変更を承認：申請 #{tier_request.pk}"
        f" / Tier change approved: request #{tier_request.pk}"
    )
    japanese, english = tier_mail.body.split("\n\n-----\n\n")
    assert japanese.startswith("キュレーターが公開区分の変更申請を承認しました。")
    assert english.startswith("A curator approved the tier change request; the new tier")
    japanese, english = access_mail.body.split("\n\n-----\n\n")
    assert "Consent does not cover it." in japanese and "Consent does not cover it." in english
    assert english.startswith("Your request for access to the shared files of this dataset")
    assert "Liver slices" in access_mail.subject


def test_the_mail_is_sent_by_the_task_once_the_decision_commits(
    tier_request, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(notify_task, "delay", lambda *args: queued.append(args))

    with django_capture_on_commit_callbacks() as callbacks:
        decide_tier(tier_request)

    assert mail.outbox == [] and queued == []  # nothing before the commit
    (on_commit,) = queued_work(callbacks)
    on_commit()
    assert queued == [("tier_decided", {"request_id": tier_request.pk})]
    assert mail.outbox == []  # queued, not sent: the worker sends it

    assert notify_task.apply(args=queued[0]).successful()
    (message,) = mail.outbox
    assert f"Tier change approved: request #{tier_request.pk}" in message.subject


def test_a_decision_rolled_back_sends_nothing(
    shared, tier_request, access_request, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            decide_tier(tier_request)
            decide_access(shared, access_request)
            raise RuntimeError("the surrounding work failed")

    assert queued_work(callbacks) == []
    assert mail.outbox == []
    tier_request.refresh_from_db()
    access_request.refresh_from_db()
    assert tier_request.status == access_request.status == RequestStatus.PENDING


def test_a_failing_mail_server_is_retried_then_logged_and_the_decision_stands(
    shared, access_request, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr(notify, "send_mail", refuse)

    with django_capture_on_commit_callbacks(execute=True):
        grant = decide_access(shared, access_request)

    assert len(attempts) == notify_task.max_retries + 1
    assert "was not sent" in caplog.text
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.APPROVED
    assert grant.request == access_request


def test_a_request_gone_before_its_mail_is_not_an_error(access_request, caplog):
    pk = access_request.pk
    access_request.delete()

    assert notify.notice_send("access_decided", {"request_id": pk}) is False
    assert "no longer exists" in caplog.text


def test_with_the_broker_away_the_notice_is_sent_from_here_and_the_broker_is_not_asked_again(
    tier_request, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    tries = []

    def broker_away(*args, **kwargs):
        tries.append(args)
        raise ConnectionRefusedError("no broker")

    monkeypatch.setattr(notify_task, "delay", broker_away)
    monkeypatch.setattr(notify, "_broker_down_until", 0.0)

    with django_capture_on_commit_callbacks(execute=True):
        decide_tier(tier_request)
    (message,) = mail.outbox
    assert f"request #{tier_request.pk}" in message.subject
    assert len(tries) == 1 and "not queued; sending it now" in caplog.text

    notify._notice_queue("tier_decided", {"request_id": tier_request.pk})
    assert len(tries) == 1  # within the pause: straight to the mail server
    assert len(mail.outbox) == 2


def test_a_notice_that_cannot_be_composed_is_logged_and_the_decision_stands(
    tier_request, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    monkeypatch.setattr(notify, "_broker_down_until", float("inf"))  # send from here

    def broken(**values):
        raise RuntimeError("template missing")

    monkeypatch.setitem(notify.NOTICES, "tier_decided", broken)

    with django_capture_on_commit_callbacks(execute=True):
        decide_tier(tier_request)

    assert mail.outbox == []
    assert "could not be sent" in caplog.text
    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.APPROVED
