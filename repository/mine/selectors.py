"""What "My page" shows a signed-in person: their projects and roles, the invitations
addressed to them, their access requests and the access grants they hold, and the
identifiers a PM may invite them by."""

from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.utils import timezone

from accounts.identities import identities_of
from accounts.invitations import invitations_addressed_to
from accounts.models import ExternalIdentity, Invitation, Membership, User
from repository.models import AccessGrant, AccessRequest

# The most of each list the page shows (newest first); older ones stay in the project pages.
LIST_LIMIT = 50


@dataclass(frozen=True)
class MyPage:
    memberships: list[Membership]
    invitations: list[Invitation]
    access_requests: list[AccessRequest]
    grants: list[AccessGrant]
    email: str
    eppns: list[str] = field(default_factory=list)
    orcids: list[str] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        """Nothing here yet: the page says what to do next instead."""
        return not (self.memberships or self.invitations or self.access_requests or self.grants)


def my_memberships(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user)
        .select_related("project__institution")
        .order_by("project__name_en", "project__name_ja", "project_id")
    )


def lands_on_my_page(user: User) -> bool:
    """Whether a sign-in without a page to return to should land ``user`` on My page: they
    are in no project yet, or an invitation waits for them there."""
    return (
        not Membership.objects.filter(user=user).exists() or invitations_addressed_to(user).exists()
    )


def my_page(*, user: User) -> MyPage:
    now = timezone.now()
    linked = identities_of(user)
    orcids = list(linked.get(ExternalIdentity.Provider.ORCID, []))
    if user.orcid_verified and user.orcid and user.orcid not in orcids:
        orcids.append(user.orcid)
    grants = list(
        AccessGrant.objects.filter(grantee=user)
        .select_related("record__project")
        .order_by("-created_at", "-pk")[:LIST_LIMIT]
    )
    for grant in grants:
        grant.is_live = grant.revoked_at is None and grant.expires_at > now
    return MyPage(
        memberships=list(my_memberships(user)),
        invitations=list(invitations_addressed_to(user).select_related("project")),
        access_requests=list(
            AccessRequest.objects.filter(requester=user)
            .select_related("record__project")
            .order_by("-created_at", "-pk")[:LIST_LIMIT]
        ),
        grants=grants,
        email=user.email,
        eppns=list(linked.get(ExternalIdentity.Provider.SAML, [])),
        orcids=orcids,
    )
