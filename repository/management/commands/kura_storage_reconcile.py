"""``manage.py kura_storage_reconcile``: bytes in the store that no row owns."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from repository.preservation.object_store import StoreError
from repository.preservation.reconcile import RECONCILE_GRACE, storage_reconcile


class Command(BaseCommand):
    help = (
        "List the store and show the objects and multipart uploads that no upload or stored"
        " object owns, older than the grace period; with --apply, delete and abort them."
        " Stored objects whose bytes are missing are only reported (fixity quarantines them)."
        " A dry run by default: deleting is for an operator who has read the list."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--apply",
            action="store_true",
            help="Delete and abort what is listed (default: dry run).",
        )
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=RECONCILE_GRACE.total_seconds() / 3600,
            help="Leave alone what is younger than this many hours (default %(default)s).",
        )

    def handle(self, *args, apply: bool, grace_hours: float, **options):
        if grace_hours < 1:
            raise CommandError(
                "A grace period under an hour could delete an upload being started or completed."
            )
        try:
            report = storage_reconcile(
                now=timezone.now(), dry_run=not apply, grace=timedelta(hours=grace_hours)
            )
        except StoreError as exc:
            raise CommandError(f"The store could not be listed: {exc}") from exc
        verb = "deleted" if apply else "would delete"
        for key in report.orphan_objects:
            self.stdout.write(f"orphan object {key}: {verb}")
        for key, upload_id in report.orphan_uploads:
            self.stdout.write(
                f"orphan multipart upload {upload_id} ({key or 'key unknown'}):"
                f" {'aborted' if apply else 'would abort'}"
            )
        for object_id in report.stored_missing:
            self.stdout.write(f"stored object {object_id} has no bytes: left to fixity")
        for failure in report.failures:
            self.stderr.write(f"failed: {failure}")
        counts = report.as_dict()
        self.stdout.write(
            ("" if apply else "DRY RUN (nothing changed; --apply to act): ")
            + " ".join(f"{name}={value}" for name, value in counts.items() if name != "dry_run")
        )
        if report.failures:
            raise CommandError(f"{len(report.failures)} could not be removed; run again later.")
