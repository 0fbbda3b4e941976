from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DmpConfig(AppConfig):
    name = "dmp"
    verbose_name = _("Data management plans")

    def ready(self) -> None:
        from core.generations import watch

        from .models import DataManagementPlan, DmpRecord, RecordCreator

        watch(DataManagementPlan, DmpRecord, RecordCreator)
