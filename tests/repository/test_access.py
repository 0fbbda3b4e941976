"""The access matrix: who may do what to one data object, in every tier state.

``EXPECTED`` is the specification (docs/architecture.md, "Access tiers"). Every case builds one
fresh project holding one stored object, makes one user whose role is relative to that
object, and asks :mod:`repository.access` every way it can be asked: the queryset filter,
the single-object check and the per-row annotation must all give the table's answer.
"""

import datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.utils import timezone

from accounts.members import member_remove, member_role_change
from accounts.models import Membership, Role
from core.vocabularies import MetadataAccess, Tier
from dmp.models import DmpRecord
from repository.access import (
    Action,
    access_data_object,
    can,
    permissions_for,
    records_visible_to,
    rule,
    visible_to,
    with_permissions,
)
from repository.models import DataObject, RequestStatus
from tests.factories import (
    AccessGrantFactory,
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    TierChangeRequestFactory,
    UserFactory,
    make_curator,
    make_program_officer,
    make_superuser,
)

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "outsider",
    "grantee_live",
    "grantee_expired",
    "collaborator",
    "researcher_uploader",
    "researcher_other",
    "data_manager",
    "pm",
    "curator_pending",
    "curator",
    "superuser",
)
STATES = (
    "public",
    "embargoed_before",
    "embargoed_after",
    "shared_open",
    "shared_closed",
    "non_shared",
    "quarantined",
)

EVERYONE = frozenset(ROLES)
NOBODY = frozenset()
STEWARDS = frozenset({"researcher_uploader", "data_manager", "pm"})
MEMBERS = STEWARDS | {"collaborator", "researcher_other"}
CURATORS = frozenset({"curator_pending", "curator"})
SUPERUSER = frozenset({"superuser"})

# Roles allowed each action on the object, by tier state.
EXPECTED: dict[Action, dict[str, frozenset[str]]] = {
    Action.VIEW_METADATA: {
        "public": EVERYONE,
        "embargoed_before": EVERYONE,
        "embargoed_after": EVERYONE,
        "shared_open": EVERYONE,
        "shared_closed": {"grantee_live"} | MEMBERS | CURATORS | SUPERUSER,
        "non_shared": STEWARDS | CURATORS | SUPERUSER,
        "quarantined": EVERYONE,
    },
    Action.DOWNLOAD: {
        "public": EVERYONE,
        "embargoed_before": MEMBERS | {"curator_pending"} | SUPERUSER,
        "embargoed_after": EVERYONE,
        "shared_open": {"grantee_live"} | MEMBERS | {"curator_pending"} | SUPERUSER,
        "shared_closed": {"grantee_live"} | MEMBERS | {"curator_pending"} | SUPERUSER,
        "non_shared": STEWARDS | {"curator_pending"} | SUPERUSER,
        "quarantined": NOBODY,
    },
    Action.EDIT: dict.fromkeys(STATES, STEWARDS | SUPERUSER),
    Action.MANAGE_ACCESS: dict.fromkeys(STATES, STEWARDS | {"curator_pending"} | SUPERUSER),
    Action.DELETE: dict.fromkeys(STATES, STEWARDS | SUPERUSER),
}
# A preview (thumbnail, tile, summary) is for whoever downloads the bytes.
EXPECTED[Action.PREVIEW] = EXPECTED[Action.DOWNLOAD]


def allowed(role: str, state: str, action: Action) -> bool:
    return role in EXPECTED[action][state]


def build_object(state: str, **overrides) -> DataObject:
    """One object in ``state``, in a fresh project, uploaded by a researcher member."""
    today = timezone.localdate()
    tier, metadata_access, available_date, quarantined_at = {
        "public": (Tier.PUBLIC, MetadataAccess.OPEN, None, None),
        "embargoed_before": (
            Tier.EMBARGOED,
            MetadataAccess.OPEN,
            today + datetime.timedelta(days=30),
            None,
        ),
        "embargoed_after": (
            Tier.EMBARGOED,
            MetadataAccess.OPEN,
            today - datetime.timedelta(days=1),
            None,
        ),
        "shared_open": (Tier.SHARED, MetadataAccess.OPEN, None, None),
        "shared_closed": (Tier.SHARED, MetadataAccess.CLOSED, None, None),
        "non_shared": (Tier.NON_SHARED, MetadataAccess.CLOSED, None, None),
        "quarantined": (Tier.PUBLIC, MetadataAccess.OPEN, None, timezone.now()),
    }[state]
    uploader = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(
        project=uploader.project,
        access_rights=tier,
        available_date=available_date,
        metadata_access=metadata_access,
    )
    fields = {
        "project": uploader.project,
        "record": record,
        "uploaded_by": uploader.user,
        "tier": tier,
        "available_date": available_date,
        "quarantined_at": quarantined_at,
        **overrides,
    }
    return DataObjectFactory(**fields)


def build_user(role: str, obj: DataObject):
    """A user whose relation to ``obj`` is ``role``."""
    now = timezone.now()
    match role:
        case "anonymous":
            return AnonymousUser()
        case "outsider":
            return UserFactory()
        case "grantee_live" | "grantee_expired":
            expiry = datetime.timedelta(days=1 if role == "grantee_live" else -1)
            grant = AccessGrantFactory(
                record=obj.record, granted_by=obj.uploaded_by, expires_at=now + expiry
            )
            return grant.grantee
        case "collaborator" | "researcher_other" | "data_manager" | "pm":
            role_in_project = {
                "collaborator": Role.COLLABORATOR,
                "researcher_other": Role.RESEARCHER,
                "data_manager": Role.DATA_MANAGER,
                "pm": Role.PM,
            }[role]
            return MembershipFactory(project=obj.project, role=role_in_project).user
        case "researcher_uploader":
            return obj.uploaded_by
        case "curator_pending":
            TierChangeRequestFactory(
                project=obj.project, requested_by=obj.uploaded_by, data_objects=[obj]
            )
            return make_curator()
        case "curator":
            curator = make_curator()
            TierChangeRequestFactory(
                project=obj.project,
                requested_by=obj.uploaded_by,
                data_objects=[obj],
                status=RequestStatus.APPROVED,
                decided_by=curator,
                decided_at=now,
            )
            return curator
        case "superuser":
            return make_superuser()
    raise ValueError(role)


def assert_access(user, action: Action, obj: DataObject, expected: bool) -> None:
    """Every way of asking gives the same answer."""
    assert list(visible_to(user, action).values_list("pk", flat=True)) == (
        [obj.pk] if expected else []
    )
    assert DataObject.objects.filter(rule(user, action), pk=obj.pk).exists() is expected
    assert can(user, action, DataObject.objects.get(pk=obj.pk)) is expected
    annotated = with_permissions(DataObject.objects.filter(pk=obj.pk), user).get()
    assert getattr(annotated, f"can_{action.value}") is expected
    assert can(user, action, annotated) is expected
    assert permissions_for(user, obj)[f"can_{action.value}"] is expected


@pytest.mark.parametrize("action", Action)
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(role, state, action):
    obj = build_object(state)
    user = build_user(role, obj)

    assert_access(user, action, obj, allowed(role, state, action))


@pytest.mark.parametrize(("days_to_go", "expected"), [(1, False), (0, True), (-1, True)])
def test_embargo_lifts_for_everyone_on_its_available_date(days_to_go, expected):
    available_date = timezone.localdate() + datetime.timedelta(days=days_to_go)
    obj = build_object("embargoed_before", available_date=available_date)

    assert_access(AnonymousUser(), Action.DOWNLOAD, obj, expected)


UPLOADER = frozenset({"researcher_uploader"})

# Objects that are not (or no longer) stored, whatever their tier: an upload that never
# completed is seen by its uploader alone while it is still on its way (on "My uploads" and
# the upload page), by nobody once abandoned; nobody acts on it but through the upload API.
EXPECTED_BY_STATUS: dict[tuple[str, Action], frozenset[str]] = {
    **{(DataObject.Status.UPLOADING, action): NOBODY for action in Action},
    (DataObject.Status.UPLOADING, Action.VIEW_METADATA): UPLOADER,
    **{(DataObject.Status.ABANDONED, action): NOBODY for action in Action},
    **{(DataObject.Status.DELETED, action): NOBODY for action in Action},
}


@pytest.mark.parametrize(("status", "action"), EXPECTED_BY_STATUS)
@pytest.mark.parametrize("role", ROLES)
def test_objects_not_stored_are_hidden_even_when_public(role, status, action):
    obj = build_object("public", status=status, stored_at=None)
    user = build_user(role, obj)

    assert_access(user, action, obj, role in EXPECTED_BY_STATUS[status, action])


@pytest.mark.parametrize("status", [DataObject.Status.UPLOADING, DataObject.Status.ABANDONED])
@pytest.mark.parametrize("role", ["data_manager", "pm", "curator", "superuser"])
def test_stewards_and_staff_see_no_upload_that_never_completed(role, status):
    """The stored copy of the same file is listed; the ghost of a failed attempt is not."""
    ghost = build_object("non_shared", status=status, stored_at=None)
    stored = DataObjectFactory(
        project=ghost.project,
        record=ghost.record,
        uploaded_by=ghost.uploaded_by,
        original_filename=ghost.original_filename,
        tier=Tier.NON_SHARED,
    )
    user = build_user(role, ghost)

    assert list(visible_to(user, Action.VIEW_METADATA).values_list("pk", flat=True)) == [stored.pk]


def test_uploader_who_left_the_project_no_longer_sees_their_upload_in_flight():
    obj = build_object("non_shared", status=DataObject.Status.UPLOADING, stored_at=None)
    assert can(obj.uploaded_by, Action.VIEW_METADATA, obj)

    Membership.objects.filter(user=obj.uploaded_by, project=obj.project).delete()

    assert_access(obj.uploaded_by, Action.VIEW_METADATA, obj, expected=False)


@pytest.mark.parametrize("action", Action)
def test_uploader_who_left_the_project_loses_their_non_shared_object(action):
    obj = build_object("non_shared")
    uploader = obj.uploaded_by
    assert can(uploader, action, obj)

    Membership.objects.filter(user=uploader, project=obj.project).delete()

    assert_access(uploader, action, obj, expected=False)


# Memberships changed during the test through the members services (accounts/members.py):
# (role before, role after; "outsider" is removed from the project).
MEMBERSHIP_CHANGES = (
    ("pm", "outsider"),
    ("data_manager", "outsider"),
    ("researcher_other", "outsider"),
    ("researcher_uploader", "outsider"),
    ("collaborator", "outsider"),
    ("data_manager", "collaborator"),
    ("collaborator", "data_manager"),
    ("researcher_other", "pm"),
)
PROJECT_ROLE = {
    "pm": Role.PM,
    "data_manager": Role.DATA_MANAGER,
    "researcher_other": Role.RESEARCHER,
    "collaborator": Role.COLLABORATOR,
}


@pytest.mark.parametrize("action", Action)
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize(("before", "after"), MEMBERSHIP_CHANGES)
def test_access_follows_a_membership_changed_during_the_test(before, after, state, action):
    obj = build_object(state)
    user = build_user(before, obj)
    assert_access(user, action, obj, allowed(before, state, action))
    membership = Membership.objects.get(user=user, project=obj.project)
    pm = MembershipFactory(project=obj.project, role=Role.PM).user  # another PM decides

    if after == "outsider":
        member_remove(actor=pm, project=obj.project, membership_pk=membership.pk)
    else:
        member_role_change(
            actor=pm, project=obj.project, membership_pk=membership.pk, role=PROJECT_ROLE[after]
        )

    # The same user object, asked again: no answer from before the change survives.
    assert_access(user, action, obj, allowed(after, state, action))


@pytest.mark.parametrize("action", [Action.VIEW_METADATA, Action.DOWNLOAD])
def test_revoked_grant_gives_nothing(action):
    obj = build_object("shared_closed")
    grant = AccessGrantFactory(record=obj.record, granted_by=obj.uploaded_by)
    assert can(grant.grantee, action, obj)

    grant.revoked_at = timezone.now()
    grant.revoked_by = obj.uploaded_by
    grant.save()

    assert grant.expires_at > timezone.now()
    assert_access(grant.grantee, action, obj, expected=False)
    assert not records_visible_to(grant.grantee).filter(pk=obj.record_id).exists()


@pytest.mark.parametrize("pk_kind", ["forbidden", "missing", "garbage"])
def test_access_data_object_answers_404_alike(pk_kind):
    obj = build_object("non_shared")
    pk = {"forbidden": obj.pk, "missing": obj.pk + 1000, "garbage": "abc"}[pk_kind]

    with pytest.raises(Http404, match=r"^No such data object\.$"):
        access_data_object(UserFactory(), pk, Action.VIEW_METADATA)


def test_access_data_object_returns_an_allowed_object():
    obj = build_object("non_shared")
    pm = MembershipFactory(project=obj.project, role=Role.PM).user

    assert access_data_object(pm, str(obj.pk), Action.DOWNLOAD) == obj


@pytest.mark.parametrize("action", Action)
@pytest.mark.parametrize("state", STATES)
def test_program_officer_gets_anonymous_object_access(state, action):
    obj = build_object(state)

    assert_access(make_program_officer(), action, obj, allowed("anonymous", state, action))


def test_anonymous_reads_only_open_records():
    project = ProjectFactory()
    records = {
        access: DmpRecordFactory(project=project, metadata_access=access)
        for access in MetadataAccess
    }

    assert list(records_visible_to(AnonymousUser())) == [records[MetadataAccess.OPEN]]


@pytest.mark.parametrize("role", ["anonymous", "outsider"])
def test_flags_are_false_not_null_for_an_object_without_a_record(role, django_assert_num_queries):
    obj = build_object("shared_open", record=None)
    user = build_user(role, obj)

    annotated = with_permissions(DataObject.objects.filter(pk=obj.pk), user).get()

    with django_assert_num_queries(0):
        assert [can(user, action, annotated) for action in Action] == [False] * len(Action)


# Personal data is previewed only to those who download it other than as "everyone"
# (members, reviewing curators, and grantees where a grant is what lets them download);
# a DICOM image of personal data only to stewards (and superusers).
BEYOND_EVERYONE = MEMBERS | {"curator_pending"} | SUPERUSER
GRANTED_STATES = {"shared_open", "shared_closed"}


@pytest.mark.parametrize("dicom", [False, True], ids=["image", "dicom"])
@pytest.mark.parametrize("flagged_on", ["object", "record"])
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_personal_data_previews(role, state, flagged_on, dicom):
    technical = {"format": "DICOM" if dicom else "TIFF"}
    obj = build_object(
        state, technical_metadata=technical, contains_personal_data=flagged_on == "object"
    )
    if flagged_on == "record":
        DmpRecord.objects.filter(pk=obj.record_id).update(contains_personal_data=True)
    user = build_user(role, obj)
    allowed_roles = (STEWARDS | SUPERUSER) if dicom else BEYOND_EVERYONE
    if not dicom and state in GRANTED_STATES:
        allowed_roles = allowed_roles | {"grantee_live"}

    expected = allowed(role, state, Action.DOWNLOAD) and role in allowed_roles
    assert_access(user, Action.PREVIEW, obj, expected)


@pytest.mark.parametrize("state", ["public", "shared_open"])
def test_anonymised_personal_data_previews_as_any_file(state):
    obj = build_object(state, technical_metadata={"format": "DICOM"})
    DmpRecord.objects.filter(pk=obj.record_id).update(
        contains_personal_data=True, anonymisation_attested=True
    )

    assert_access(AnonymousUser(), Action.PREVIEW, obj, state == "public")
