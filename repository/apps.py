from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _abort_uploads_of_leaver(sender, project, user, actor=None, **kwargs) -> None:
    from django.db import transaction

    from repository.preservation.uploads import uploads_abort_of_leaver

    transaction.on_commit(
        lambda: uploads_abort_of_leaver(project_id=project.pk, user_id=user.pk, actor=actor),
        robust=True,
    )


class RepositoryConfig(AppConfig):
    name = "repository"
    verbose_name = _("Repository")

    def ready(self) -> None:
        from core.audit import audit_writer_register
        from core.generations import PROJECT, watch, watch_m2m
        from repository.models import (
            AccessGrant,
            AccessRequest,
            AuditEvent,
            DataObject,
            DatasetConcept,
            DatasetVersion,
            TierChangeRequest,
        )
        from repository.services import audit_event_record

        audit_writer_register(audit_event_record)
        # A published record's metadata stays open (its DOIs must keep resolving).
        from dmp.services import record_update_check_register
        from repository.publishing.versions import record_update_refusals

        record_update_check_register(record_update_refusals)
        # The tasks, which repository.preservation.queue hands work to by name, in every process.
        from repository import tasks  # noqa: F401

        # Only the generations of the rows' own record and project (their querysets'
        # scope_fields): an object's landing page and dashboard, a request's dashboard.
        watch(
            DataObject, TierChangeRequest, AccessRequest, AccessGrant, AuditEvent, generation=None
        )
        # Published versions and their DOI states are listed on the landing pages.
        watch(DatasetVersion, DatasetConcept, quiet_fields={"doi_attempted_at"})
        watch_m2m(
            TierChangeRequest.data_objects,
            scoped=lambda instance: [PROJECT.of(instance.project_id)],
        )
        # A member removed (accounts/members.py): their unfinished uploads in the project
        # are aborted once the removal commits.
        from accounts.members import member_removed

        member_removed.connect(_abort_uploads_of_leaver, dispatch_uid="kura.leaver_uploads")

        # OAI-PMH datestamps follow the writes that move a record's generations.
        from repository.discovery.oai import stamps

        stamps.listen()
