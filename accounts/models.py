from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from core.generations import INSTITUTION, PROJECT, PROJECT_DETAILS, CatalogueQuerySet, scoped_by
from core.vocabularies import FUNDERS, RESEARCH_FIELDS

ror_validator = RegexValidator(
    r"^https://ror\.org/0[a-hj-km-np-tv-z0-9]{6}[0-9]{2}$",
    _("Enter a ROR identifier such as https://ror.org/057zh3y96."),
)
erad_researcher_validator = RegexValidator(
    r"^[0-9]{8}$", _("An e-Rad researcher number has 8 digits.")
)


class InstitutionQuerySet(CatalogueQuerySet):
    # A write also moves the institution's own generation: the records of its projects
    # show its names (core.generations).
    scope_fields = ("id",)
    scoped = scoped_by(INSTITUTION, "id")


class ProjectQuerySet(CatalogueQuerySet):
    # A write also moves the project's own generation: its records show its names,
    # funder and program (core.generations).
    scope_fields = ("id",)
    scoped = scoped_by(PROJECT_DETAILS, "id")


def bilingual(ja: str, en: str) -> str:
    """The value in the active language, falling back to the other one."""
    if (get_language() or "en").startswith("ja"):
        return ja or en
    return en or ja


class User(AbstractUser):
    """A person who signs in to Kura. Project roles live in :class:`Membership`."""

    name_ja = models.CharField(_("name (Japanese)"), max_length=200, blank=True)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    erad_researcher_number = models.CharField(
        _("e-Rad researcher number"),
        max_length=8,
        blank=True,
        validators=[erad_researcher_validator],
    )
    orcid = models.CharField(_("ORCID iD"), max_length=19, blank=True)
    # True once the person proved the iD by signing in with ORCID: it is then read-only.
    orcid_verified = models.BooleanField(_("ORCID iD verified"), default=False)
    # Where the person signs in from: set from GakuNin on each sign-in (the IdP's
    # Institution, else the one whose SAML scopes match), with the organisation name the
    # IdP asserted (organizationName/jao), which is kept even when no Institution matches.
    institution = models.ForeignKey(
        "Institution",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="people",
        verbose_name=_("institution"),
    )
    organization_name = models.CharField(
        _("organisation (as asserted)"), max_length=255, blank=True
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def display_name(self) -> str:
        return bilingual(self.name_ja, self.name_en) or self.get_full_name() or self.username


class Institution(models.Model):
    """A research organisation that hosts data."""

    name_ja = models.CharField(_("name (Japanese)"), max_length=255, blank=True)
    name_en = models.CharField(_("name (English)"), max_length=255, blank=True)
    ror_id = models.URLField(_("ROR id"), blank=True, validators=[ror_validator])
    # GakuNin: the institution's IdP, and the scopes of its eduPersonPrincipalName /
    # eduPersonScopedAffiliation values (space-separated), which map people to it.
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=1024, blank=True)
    saml_scopes = models.CharField(
        _("SAML scopes"),
        max_length=1024,
        blank=True,
        help_text=_("Space-separated, e.g. example.ac.jp"),
    )

    objects = InstitutionQuerySet.as_manager()

    class Meta:
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")
        ordering = ["name_en", "name_ja"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(name_ja="") | ~models.Q(name_en=""),
                name="institution_has_a_name",
            ),
            models.UniqueConstraint(
                fields=["ror_id"], condition=~models.Q(ror_id=""), name="institution_unique_ror"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return bilingual(self.name_ja, self.name_en)


class Project(models.Model):
    """A funded research project (e-Rad 課題)."""

    institution = models.ForeignKey(
        Institution,
        on_delete=models.PROTECT,
        related_name="projects",
        verbose_name=_("institution"),
    )
    name_ja = models.CharField(_("project name (Japanese)"), max_length=500, blank=True)
    name_en = models.CharField(_("project name (English)"), max_length=500, blank=True)
    funder = models.CharField(_("funder"), max_length=16, choices=FUNDERS.choices)
    funding_stream_code = models.CharField(
        _("funding stream code"),
        max_length=5,
        blank=True,
        validators=[RegexValidator(r"^[a-zA-Z0-9]{0,5}$")],
    )
    program_name_ja = models.CharField(_("program name (Japanese)"), max_length=500, blank=True)
    program_name_en = models.CharField(_("program name (English)"), max_length=500, blank=True)
    japan_grant_number = models.CharField(_("Japan Grant Number"), max_length=64, blank=True)
    research_field = models.CharField(
        _("research field"), max_length=8, choices=RESEARCH_FIELDS.choices
    )
    quota_bytes = models.PositiveBigIntegerField(
        _("storage quota (bytes)"),
        null=True,
        blank=True,
        help_text=_("Empty: the site-wide default (KURA_PROJECT_QUOTA_BYTES)."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    members = models.ManyToManyField(
        User, through="Membership", related_name="projects", verbose_name=_("members")
    )

    objects = ProjectQuerySet.as_manager()

    class Meta:
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(name_ja="") | ~models.Q(name_en=""),
                name="project_has_a_name",
            ),
            models.UniqueConstraint(
                fields=["japan_grant_number"],
                condition=~models.Q(japan_grant_number=""),
                name="project_unique_grant_number",
            ),
        ]
        indexes = [models.Index(fields=["funder", "funding_stream_code"])]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return bilingual(self.name_ja, self.name_en)

    @property
    def program_name(self) -> str:
        return bilingual(self.program_name_ja, self.program_name_en)

    @property
    def funder_term(self):
        return FUNDERS[self.funder]

    @property
    def research_field_term(self):
        return RESEARCH_FIELDS[self.research_field]


class Role(models.TextChoices):
    PM = "pm", _("Project manager")
    DATA_MANAGER = "data_manager", _("Data manager")
    RESEARCHER = "researcher", _("Researcher")
    COLLABORATOR = "collaborator", _("Collaborator")


# Roles that steward the project's data: they see and manage every object in it.
STEWARD_ROLES = (Role.PM, Role.DATA_MANAGER)


class MembershipQuerySet(CatalogueQuerySet):
    # A membership change moves only its project's generation (the project's dashboard):
    # no cached page may outlive a change of who is in the project (core.generations).
    generation = None
    scope_fields = ("project_id",)
    scoped = scoped_by(PROJECT, "project_id")


class Membership(models.Model):
    """A user's single role in one project."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("project")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "project"], name="membership_unique_user"),
        ]
        indexes = [models.Index(fields=["project", "role"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} — {self.project}"


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the secret is shown once.

    A token reads ``kura_<prefix>_<secret>``: the prefix is not secret and finds the row,
    the hash of the whole token proves it.
    """

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    token_hash = models.CharField(_("SHA-256 of the token"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} (kura_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ExternalIdentity(models.Model):
    """A way of signing in that proves who a person is: a GakuNin (SAML) ePPN or an ORCID iD.

    ``subject`` is the stable key the provider asserts (``eduPersonPrincipalName``; the
    ORCID iD); ``issuer`` is who asserted it (the IdP's entityID; ORCID's issuer URL). One
    account may hold several; one subject of one provider belongs to one account.
    """

    class Provider(models.TextChoices):
        SAML = "saml", _("GakuNin (SAML)")
        ORCID = "orcid", _("ORCID")

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="identities", verbose_name=_("user")
    )
    provider = models.CharField(_("provider"), max_length=8, choices=Provider.choices)
    subject = models.CharField(_("subject"), max_length=255)
    issuer = models.CharField(_("issuer"), max_length=1024, blank=True)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("external identity")
        verbose_name_plural = _("external identities")
        constraints = [
            models.UniqueConstraint(fields=["provider", "subject"], name="identity_unique_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.subject}"


class Invitation(models.Model):
    """An invitation to join a project in a role, addressed to an e-mail address, a
    GakuNin ePPN or an ORCID iD, and accepted once by signing in (``accounts/members.py``).

    Only the SHA-256 of its random token is kept: the link is shown to the inviter once
    (and mailed when addressed to an e-mail address). It is pending until it is accepted,
    revoked or past ``expires_at``; none of those is ever undone.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", _("E-mail address")
        EPPN = "eppn", _("GakuNin ePPN")
        ORCID = "orcid", _("ORCID iD")

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("project")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    kind = models.CharField(_("addressed by"), max_length=8, choices=Kind.choices)
    value = models.CharField(_("address"), max_length=255)
    token_hash = models.CharField(
        _("SHA-256 of the token"), max_length=64, unique=True, editable=False
    )
    invited_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        related_name="invitations_sent",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    accepted_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invitations_accepted",
        verbose_name=_("accepted by"),
    )
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invitations_revoked",
        verbose_name=_("revoked by"),
    )

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["kind", "value"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(revoked_at__isnull=True),
                name="invitation_accepted_or_revoked",
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True, accepted_by__isnull=True)
                | models.Q(accepted_at__isnull=False, accepted_by__isnull=False),
                name="invitation_accepted_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()} {self.value} — {self.get_role_display()} — {self.project}"
        )

    def state(self, now=None) -> str:
        """``accepted``, ``revoked``, ``expired`` or ``pending``."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (now or timezone.now()):
            return "expired"
        return "pending"
