from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RepositoryConfig(AppConfig):
    name = "repository"
    verbose_name = _("Repository")

    def ready(self) -> None:
        from accounts.catalogue import ACTIVITY, watch, watch_m2m

        from .models import AccessGrant, AccessRequest, AuditEvent, DataObject, TierChangeRequest

        watch(DataObject)
        # What project dashboards list beside their figures.
        watch(TierChangeRequest, AccessRequest, AccessGrant, AuditEvent, generation=ACTIVITY)
        watch_m2m(TierChangeRequest.data_objects, generation=ACTIVITY)
