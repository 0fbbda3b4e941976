"""Access requests and grants: an outsider asks on the landing page, the PM or a data manager
decides on the project's access page, a grant lets its holder download shared data until it
expires or is revoked."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.governance import grants, notify
from repository.models import AccessGrant, AccessRequest, AuditEvent, RequestStatus
from tests.factories import (
    AccessGrantFactory,
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    UserFactory,
    make_curator,
)

pytestmark = pytest.mark.django_db


def future(days: int) -> str:
    return (timezone.localdate() + datetime.timedelta(days=days)).isoformat()


class Steps:
    """What people do in the browser, each as one request whose transaction "commits":
    on-commit callbacks (the e-mails) run at its end, as they would in production."""

    def __init__(self, client, capture):
        self.client = client
        self.capture = capture

    def post(self, url, data=None, **extra):
        with self.capture(execute=True):
            return self.client.post(url, data or {}, **extra)

    def request_access(self, record, purpose="Replication of figure 3 in our lab."):
        return self.post(f"/datasets/{record.pk}/request-access/", {"purpose": purpose})

    def approve(self, project, access_request, expires_on, comment=""):
        prefix = f"approve-{access_request.pk}"
        return self.post(
            f"/projects/{project.pk}/access-requests/{access_request.pk}/approve",
            {f"{prefix}-expires_on": expires_on, f"{prefix}-comment": comment},
            REMOTE_ADDR="198.51.100.4",
        )

    def reject(self, project, access_request, comment):
        return self.post(
            f"/projects/{project.pk}/access-requests/{access_request.pk}/reject",
            {f"reject-{access_request.pk}-comment": comment},
        )

    def revoke(self, project, grant_id, **extra):
        return self.post(f"/projects/{project.pk}/access-grants/{grant_id}/revoke", **extra)


@pytest.fixture
def act(client, django_capture_on_commit_callbacks):
    return Steps(client, django_capture_on_commit_callbacks)


def pending_request(shared, requester):
    return AccessRequest.objects.create(
        record=shared["record"], requester=requester, purpose="Meta-analysis."
    )


# --- Asking -------------------------------------------------------------------------------


def test_outsider_sees_the_request_form_on_the_landing_page(client, shared, outsider):
    client.force_login(outsider)

    page = client.get(f"/datasets/{shared['record'].pk}/").content.decode()

    assert 'id="access-request-form"' in page
    assert f'action="/datasets/{shared["record"].pk}/request-access/"' in page
    assert 'href="#request-access"' in page  # the "Request access" button of the shared file


def test_anonymous_visitor_gets_a_login_link_instead_of_the_form(client, shared):
    page = client.get(f"/datasets/{shared['record'].pk}/").content.decode()

    assert 'id="access-request-form"' not in page
    assert f"/accounts/login/?next=/datasets/{shared['record'].pk}/request-access/" in page


def test_anonymous_post_is_sent_to_log_in_and_changes_nothing(client, shared, act):
    response = act.request_access(shared["record"])

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize("role", [Role.COLLABORATOR, Role.RESEARCHER])
def test_project_members_are_told_the_data_is_theirs_and_cannot_ask(client, shared, role, act):
    member = MembershipFactory(project=shared["project"], role=role).user
    client.force_login(member)

    page = client.get(f"/datasets/{shared['record'].pk}/").content.decode()
    response = act.request_access(shared["record"])

    assert 'id="access-request-form"' not in page
    assert "You are a member of this project" in page
    assert response.status_code == 400
    assert "You are a member of this project" in response.content.decode()
    assert not AccessRequest.objects.exists()


def test_request_is_saved_and_the_stewards_are_emailed(client, shared, outsider, act):
    data_manager = MembershipFactory(project=shared["project"], role=Role.DATA_MANAGER).user
    MembershipFactory(project=shared["project"], role=Role.RESEARCHER)  # not told
    client.force_login(outsider)

    with_mail = act.request_access(shared["record"])

    assert with_mail.status_code == 302
    assert with_mail["Location"] == f"/datasets/{shared['record'].pk}/#request-access"
    access_request = AccessRequest.objects.get()
    assert (access_request.requester, access_request.record, access_request.status) == (
        outsider,
        shared["record"],
        RequestStatus.PENDING,
    )
    assert access_request.purpose == "Replication of figure 3 in our lab."
    (message,) = mail.outbox
    assert sorted(message.to) == sorted([shared["pm"].email, data_manager.email])
    assert "Liver slices" in message.subject
    assert f"/projects/{shared['project'].pk}/access-requests/" in message.body
    page = client.get(f"/datasets/{shared['record'].pk}/").content.decode()
    assert "The project has not decided yet" in page
    assert 'id="access-request-form"' not in page


@pytest.mark.parametrize("purpose", ["", "   \n  "])
def test_missing_purpose_is_a_form_error_and_nothing_is_saved(
    client, shared, outsider, purpose, act
):
    client.force_login(outsider)

    response = act.request_access(shared["record"], purpose=purpose)

    assert response.status_code == 400
    assert "Say what you will use the data for" in response.content.decode()
    assert not AccessRequest.objects.exists()
    assert not mail.outbox


def test_second_request_while_one_is_pending_is_refused(client, shared, outsider, act):
    client.force_login(outsider)
    act.request_access(shared["record"])
    mail.outbox.clear()

    response = act.request_access(shared["record"], purpose="Again, please.")

    assert response.status_code == 400
    assert "You have already asked for access" in response.content.decode()
    assert AccessRequest.objects.count() == 1
    assert not mail.outbox


def test_holder_of_a_live_grant_cannot_ask_again(client, shared, outsider, act):
    AccessGrantFactory(record=shared["record"], grantee=outsider, granted_by=shared["pm"])
    client.force_login(outsider)

    response = act.request_access(shared["record"])

    assert response.status_code == 400
    assert not AccessRequest.objects.exists()


def test_a_record_without_shared_files_offers_nothing_to_request(client, outsider, act):
    record = DmpRecordFactory(access_rights=Tier.PUBLIC, metadata_access=MetadataAccess.OPEN)
    DataObjectFactory(project=record.project, record=record, tier=Tier.PUBLIC)
    client.force_login(outsider)

    page = client.get(f"/datasets/{record.pk}/").content.decode()
    response = act.request_access(record)

    assert 'id="request-access"' not in page
    assert response.status_code == 400
    assert not AccessRequest.objects.exists()


def test_a_record_whose_metadata_is_closed_answers_404(client, outsider, act):
    record = DmpRecordFactory(access_rights=Tier.SHARED, metadata_access=MetadataAccess.CLOSED)
    DataObjectFactory(project=record.project, record=record, tier=Tier.SHARED)
    client.force_login(outsider)

    assert act.request_access(record).status_code == 404
    assert not AccessRequest.objects.exists()


# --- Deciding -----------------------------------------------------------------------------


@pytest.mark.parametrize("decider_role", [Role.PM, Role.DATA_MANAGER])
def test_approval_grants_access_audits_it_and_emails_the_requester(
    client, shared, outsider, decider_role, act
):
    decider = MembershipFactory(project=shared["project"], role=decider_role).user
    access_request = pending_request(shared, outsider)
    client.force_login(decider)

    page = client.get(f"/projects/{shared['project'].pk}/access-requests/")
    response = act.approve(shared["project"], access_request, future(30), "Enjoy.")

    assert page.status_code == 200
    assert "Meta-analysis." in page.content.decode()
    assert response.status_code == 302
    grant = AccessGrant.objects.get()
    expected_end = timezone.localdate() + datetime.timedelta(days=30)
    assert (grant.grantee, grant.record, grant.granted_by, grant.request) == (
        outsider,
        shared["record"],
        decider,
        access_request,
    )
    assert timezone.localtime(grant.expires_at).date() == expected_end
    access_request.refresh_from_db()
    assert (access_request.status, access_request.decided_by) == (RequestStatus.APPROVED, decider)
    assert access_request.decision_comment == "Enjoy."
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.ip_address) == (
        AuditEvent.Action.GRANT_CREATED,
        decider,
        "198.51.100.4",
    )
    assert (event.project, event.record, event.data_object) == (
        shared["project"],
        shared["record"],
        None,
    )
    assert event.after["grantee"] == outsider.username
    assert datetime.datetime.fromisoformat(event.after["expires_at"]) == grant.expires_at
    (message,) = mail.outbox
    assert message.to == [outsider.email]
    assert "Access granted" in message.subject
    assert expected_end.isoformat() in message.body
    assert "Enjoy." in message.body


def test_grant_lets_the_grantee_download_until_expiry_and_not_after(client, shared, outsider, act):
    access_request = pending_request(shared, outsider)
    client.force_login(shared["pm"])
    act.approve(shared["project"], access_request, future(10))
    grant = AccessGrant.objects.get()
    client.force_login(outsider)
    url = f"/objects/{shared['object'].pk}/download"

    allowed = client.get(url, REMOTE_ADDR="203.0.113.9")
    # The same grant, its expiry moved just into the past: no download any more.
    AccessGrant.objects.filter(pk=grant.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    refused = client.get(url)

    assert allowed.status_code == 302
    download = AuditEvent.objects.get(action=AuditEvent.Action.DOWNLOAD)
    assert (download.actor, download.data_object, download.ip_address) == (
        outsider,
        shared["object"],
        "203.0.113.9",
    )
    assert refused.status_code == 404
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DOWNLOAD).count() == 1


def test_grant_covers_only_its_own_record(client, shared, outsider):
    other_record = DmpRecordFactory(project=shared["project"], metadata_access=MetadataAccess.OPEN)
    other = DataObjectFactory(project=shared["project"], record=other_record, tier=Tier.SHARED)
    AccessGrantFactory(record=shared["record"], grantee=outsider, granted_by=shared["pm"])
    client.force_login(outsider)

    assert client.get(f"/objects/{shared['object'].pk}/download").status_code == 302
    assert client.get(f"/objects/{other.pk}/download").status_code == 404


def test_landing_page_tells_the_grantee_until_when(client, shared, outsider):
    grant = AccessGrantFactory(record=shared["record"], grantee=outsider, granted_by=shared["pm"])
    client.force_login(outsider)

    page = client.get(f"/datasets/{shared['record'].pk}/").content.decode()

    assert "has been granted until" in page
    assert timezone.localtime(grant.expires_at).strftime("%Y-%m-%d") in page
    assert f"/objects/{shared['object'].pk}/download" in page


@pytest.mark.parametrize(
    ("expires_on", "message"),
    [
        (0, "must be in the future"),
        (-3, "must be in the future"),
        (10_000, "at the latest"),
        ("31/12/2030", "Enter a date"),
        ("", "Choose the date"),
    ],
)
def test_bad_expiry_is_a_form_error_and_nothing_changes(
    client, shared, outsider, expires_on, message, act
):
    access_request = pending_request(shared, outsider)
    client.force_login(shared["pm"])
    value = future(expires_on) if isinstance(expires_on, int) else expires_on

    response = act.approve(shared["project"], access_request, value)

    assert response.status_code == 400
    assert message in response.content.decode()
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.PENDING
    assert not AccessGrant.objects.exists()
    assert not AuditEvent.objects.exists()
    assert not mail.outbox


def test_the_latest_allowed_expiry_is_accepted(client, shared, outsider, settings, act):
    settings.KURA_ACCESS_GRANT_MAX_DAYS = 60
    access_request = pending_request(shared, outsider)
    client.force_login(shared["pm"])

    too_late = act.approve(shared["project"], access_request, future(61))
    just_right = act.approve(shared["project"], access_request, future(60))

    assert too_late.status_code == 400
    assert just_right.status_code == 302
    assert AccessGrant.objects.count() == 1


def test_rejection_needs_a_comment_then_emails_it(client, shared, outsider, act):
    access_request = pending_request(shared, outsider)
    client.force_login(shared["pm"])

    without = act.reject(shared["project"], access_request, "  ")
    access_request.refresh_from_db()
    status_after_refusal = access_request.status
    with_comment = act.reject(shared["project"], access_request, "Consent does not cover it.")

    assert without.status_code == 400
    assert "Tell the requester why" in without.content.decode()
    assert status_after_refusal == RequestStatus.PENDING
    assert with_comment.status_code == 302
    access_request.refresh_from_db()
    assert (access_request.status, access_request.decided_by) == (
        RequestStatus.REJECTED,
        shared["pm"],
    )
    assert not AccessGrant.objects.exists()
    (message,) = mail.outbox
    assert message.to == [outsider.email]
    assert "declined" in message.subject
    assert "Consent does not cover it." in message.body
    client.force_login(outsider)
    page = client.get(f"/datasets/{shared['record'].pk}/").content.decode()
    assert "Your previous request was declined" in page
    assert 'id="access-request-form"' in page  # may ask again


def test_a_decided_request_cannot_be_decided_again(client, shared, outsider, act):
    access_request = pending_request(shared, outsider)
    client.force_login(shared["pm"])
    act.approve(shared["project"], access_request, future(5))
    mail.outbox.clear()

    again = act.approve(shared["project"], access_request, future(50))
    rejected = act.reject(shared["project"], access_request, "Changed my mind.")

    assert again.status_code == 400
    assert "already been decided" in again.content.decode()
    assert rejected.status_code == 400
    assert AccessGrant.objects.count() == 1
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.APPROVED
    assert AuditEvent.objects.count() == 1
    assert not mail.outbox


@pytest.mark.parametrize("kind", ["unknown", "other_project"])
def test_unknown_request_id_answers_404_and_changes_nothing(client, shared, outsider, kind):
    access_request = pending_request(shared, outsider)
    other_pm = MembershipFactory(role=Role.PM)
    other_record = DmpRecordFactory(project=other_pm.project)
    other_request = AccessRequest.objects.create(
        record=other_record, requester=outsider, purpose="x"
    )
    client.force_login(shared["pm"])
    target = {"unknown": access_request.pk + 1000, "other_project": other_request.pk}[kind]

    approved = client.post(
        f"/projects/{shared['project'].pk}/access-requests/{target}/approve",
        {f"approve-{target}-expires_on": future(5)},
    )
    rejected = client.post(
        f"/projects/{shared['project'].pk}/access-requests/{target}/reject",
        {f"reject-{target}-comment": "no"},
    )

    assert (approved.status_code, rejected.status_code) == (404, 404)
    assert not AccessGrant.objects.exists()
    assert set(AccessRequest.objects.values_list("status", flat=True)) == {RequestStatus.PENDING}


@pytest.mark.parametrize(
    "who",
    ["anonymous", "outsider", "requester", "collaborator", "researcher", "other_pm", "curator"],
)
def test_only_the_projects_pm_and_data_managers_decide(client, shared, outsider, who, act):
    access_request = pending_request(shared, outsider)
    users = {
        "anonymous": None,
        "outsider": UserFactory(),
        "requester": outsider,
        "collaborator": MembershipFactory(project=shared["project"], role=Role.COLLABORATOR).user,
        "researcher": MembershipFactory(project=shared["project"], role=Role.RESEARCHER).user,
        "other_pm": MembershipFactory(role=Role.PM).user,
        "curator": make_curator(),
    }
    if users[who] is not None:
        client.force_login(users[who])

    page = client.get(f"/projects/{shared['project'].pk}/access-requests/")
    approved = act.approve(shared["project"], access_request, future(5))
    rejected = act.reject(shared["project"], access_request, "no")

    expected = 302 if who == "anonymous" else 404  # anonymous: sent to log in
    assert (page.status_code, approved.status_code, rejected.status_code) == (expected,) * 3
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.PENDING
    assert not AccessGrant.objects.exists()
    assert not AuditEvent.objects.exists()


def test_project_page_links_the_access_page_for_stewards_only(client, shared):
    collaborator = MembershipFactory(project=shared["project"], role=Role.COLLABORATOR).user
    link = f'href="/projects/{shared["project"].pk}/access-requests/"'

    client.force_login(shared["pm"])
    steward_page = client.get(f"/projects/{shared['project'].pk}/").content.decode()
    client.force_login(collaborator)
    member_page = client.get(f"/projects/{shared['project'].pk}/").content.decode()

    assert link in steward_page
    assert link not in member_page


# --- Revoking -----------------------------------------------------------------------------


def test_revocation_takes_effect_at_once_and_is_audited(client, shared, outsider, act):
    grant = AccessGrantFactory(record=shared["record"], grantee=outsider, granted_by=shared["pm"])
    url = f"/objects/{shared['object'].pk}/download"
    client.force_login(outsider)
    assert client.get(url).status_code == 302

    client.force_login(shared["pm"])
    response = act.revoke(shared["project"], grant.pk, REMOTE_ADDR="198.51.100.8")
    client.force_login(outsider)
    after = client.get(url)

    assert response.status_code == 302
    assert after.status_code == 404
    grant.refresh_from_db()
    assert (grant.revoked_by, grant.revoked_at is not None) == (shared["pm"], True)
    event = AuditEvent.objects.get(action=AuditEvent.Action.GRANT_REVOKED)
    assert (event.actor, event.ip_address, event.record) == (
        shared["pm"],
        "198.51.100.8",
        shared["record"],
    )
    assert event.before["revoked"] is False
    assert event.after["revoked"] is True
    assert event.after["grantee"] == outsider.username
    (message,) = mail.outbox
    assert message.to == [outsider.email]
    assert "revoked" in message.subject


def test_grants_list_shows_live_grants_with_a_revoke_button(client, shared, outsider):
    grant = AccessGrantFactory(record=shared["record"], grantee=outsider, granted_by=shared["pm"])
    expired = AccessGrantFactory(
        record=shared["record"],
        granted_by=shared["pm"],
        expires_at=timezone.now() - datetime.timedelta(days=1),
    )
    client.force_login(shared["pm"])

    page = client.get(f"/projects/{shared['project'].pk}/access-requests/").content.decode()

    assert f"/access-grants/{grant.pk}/revoke" in page
    assert f"/access-grants/{expired.pk}/revoke" not in page
    assert expired.grantee.username in page  # listed among past grants


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_revoking_a_grant_that_is_no_longer_live_is_refused(client, shared, outsider, state, act):
    now = timezone.now()
    grant = AccessGrantFactory(
        record=shared["record"],
        grantee=outsider,
        granted_by=shared["pm"],
        expires_at=now - datetime.timedelta(days=1)
        if state == "expired"
        else now + (datetime.timedelta(days=1)),
        revoked_at=now if state == "revoked" else None,
        revoked_by=shared["pm"] if state == "revoked" else None,
    )
    client.force_login(shared["pm"])

    response = act.revoke(shared["project"], grant.pk)

    assert response.status_code == 400
    assert not AuditEvent.objects.exists()
    assert not mail.outbox


@pytest.mark.parametrize("who", ["grantee", "collaborator", "other_pm"])
def test_non_stewards_cannot_revoke(client, shared, outsider, who, act):
    grant = AccessGrantFactory(record=shared["record"], grantee=outsider, granted_by=shared["pm"])
    user = {
        "grantee": outsider,
        "collaborator": MembershipFactory(project=shared["project"], role=Role.COLLABORATOR).user,
        "other_pm": MembershipFactory(role=Role.PM).user,
    }[who]
    client.force_login(user)

    response = act.revoke(shared["project"], grant.pk)

    assert response.status_code == 404
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_revoking_another_projects_grant_answers_404(client, shared, outsider, act):
    other = AccessGrantFactory(grantee=outsider)
    client.force_login(shared["pm"])

    response = act.revoke(shared["project"], other.pk)

    assert response.status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None


# --- Services, directly -------------------------------------------------------------------


def test_approval_locks_the_request_so_a_second_decision_fails(shared, outsider):
    """Both stewards load the page; the first approves; the second's decision is refused
    under the lock instead of making a second grant."""
    access_request = pending_request(shared, outsider)
    data_manager = MembershipFactory(project=shared["project"], role=Role.DATA_MANAGER).user
    expires_on = timezone.localdate() + datetime.timedelta(days=7)
    grants.access_request_approve(
        actor=shared["pm"],
        project=shared["project"],
        access_request_id=access_request.pk,
        expires_on=expires_on,
    )

    with pytest.raises(grants.ValidationError):
        grants.access_request_approve(
            actor=data_manager,
            project=shared["project"],
            access_request_id=access_request.pk,
            expires_on=expires_on,
        )
    with pytest.raises(grants.ValidationError):
        grants.access_request_reject(
            actor=data_manager,
            project=shared["project"],
            access_request_id=access_request.pk,
            comment="no",
        )
    assert AccessGrant.objects.count() == 1


def test_service_refuses_a_decider_who_is_not_a_steward(shared, outsider):
    access_request = pending_request(shared, outsider)

    with pytest.raises(grants.PermissionDenied):
        grants.access_request_approve(
            actor=UserFactory(),
            project=shared["project"],
            access_request_id=access_request.pk,
            expires_on=timezone.localdate() + datetime.timedelta(days=7),
        )
    assert not AccessGrant.objects.exists()


def test_grant_runs_to_the_end_of_the_chosen_day():
    day = timezone.localdate() + datetime.timedelta(days=3)

    expires_at = grants.grant_expiry(day)

    local = timezone.localtime(expires_at)
    assert local.date() == day
    assert (local + datetime.timedelta(microseconds=1)).date() == day + datetime.timedelta(days=1)


def test_a_failing_mail_server_does_not_undo_the_decision(shared, outsider, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    access_request = pending_request(shared, outsider)

    grant = grants.access_request_approve(
        actor=shared["pm"],
        project=shared["project"],
        access_request_id=access_request.pk,
        expires_on=timezone.localdate() + datetime.timedelta(days=7),
    )
    notify.notice_send("access_decided", {"request_id": access_request.pk})

    assert AccessGrant.objects.get() == grant


@pytest.mark.django_db(transaction=True)
def test_a_decision_waits_for_a_concurrent_one_and_then_sees_it():
    """A second steward's approval blocks on the row lock while the first decision is in
    flight, then finds the request decided: one grant, not two."""
    import threading

    from django.db import connection, transaction

    pm = MembershipFactory(role=Role.PM)
    record = DmpRecordFactory(project=pm.project, metadata_access=MetadataAccess.OPEN)
    access_request = AccessRequest.objects.create(
        record=record, requester=UserFactory(), purpose="Meta-analysis."
    )
    data_manager = MembershipFactory(project=pm.project, role=Role.DATA_MANAGER).user
    outcome = {}

    def second_decision():
        try:
            grants.access_request_approve(
                actor=data_manager,
                project=pm.project,
                access_request_id=access_request.pk,
                expires_on=timezone.localdate() + datetime.timedelta(days=7),
            )
            outcome["result"] = "granted"
        except grants.ValidationError as exc:
            outcome["result"] = exc.messages[0]
        finally:
            connection.close()

    with transaction.atomic():
        # The first decision holds the lock ...
        locked = AccessRequest.objects.select_for_update().get(pk=access_request.pk)
        thread = threading.Thread(target=second_decision)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive()  # ... so the second one waits for it
        locked.status = RequestStatus.REJECTED
        locked.decided_by = pm.user
        locked.decision_comment = "Consent does not cover it."
        locked.save()
    thread.join(timeout=30)

    assert "already been decided" in outcome["result"]
    assert not AccessGrant.objects.exists()
    assert AccessRequest.objects.get().status == RequestStatus.REJECTED
