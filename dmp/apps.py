from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DmpConfig(AppConfig):
    name = "dmp"
    verbose_name = _("Data management plans")

    def ready(self) -> None:
        from core.generations import watch

        from .models import DataManagementPlan, DmpRecord, RecordCreator

        watch(DataManagementPlan, DmpRecord, RecordCreator)

        from accounts.orcid import orcid_verified

        from .services import record_creators_orcid_follow

        def _creators_follow(sender, *, user, **kwargs):
            record_creators_orcid_follow(user=user)

        orcid_verified.connect(_creators_follow, weak=False, dispatch_uid="dmp-creators-orcid")
