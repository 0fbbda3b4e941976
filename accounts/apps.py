from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

# Apps whose records curators may read in the admin.
CURATOR_VIEW_APPS = ("accounts", "dmp", "repository")


def ensure_site_groups(sender, using="default", **kwargs) -> None:
    """Create the curator and program-officer groups; curators may view Kura's records."""
    from django.conf import settings
    from django.contrib.auth.models import Group, Permission

    curators, _created = Group.objects.using(using).get_or_create(name=settings.KURA_CURATOR_GROUP)
    Group.objects.using(using).get_or_create(name=settings.KURA_PROGRAM_OFFICER_GROUP)
    view_permissions = Permission.objects.using(using).filter(
        content_type__app_label__in=CURATOR_VIEW_APPS, codename__startswith="view_"
    )
    curators.permissions.add(*view_permissions)


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts and projects")

    def ready(self) -> None:
        # After every app's permissions exist: connect once, for the last app migrated.
        post_migrate.connect(ensure_site_groups, dispatch_uid="kura.ensure_site_groups")

        from core.generations import ACTIVITY, watch

        from .models import Institution, Membership, Project, User

        watch(Institution, Project)
        # Who is in a project, and in which role, moves that project's generation: its
        # dashboard is never served from before a member joined, changed role or left.
        watch(Membership, generation=None)
        # People's names are listed on dashboards; a login only stamps last_login.
        watch(User, generation=ACTIVITY, quiet_fields={"last_login"})
