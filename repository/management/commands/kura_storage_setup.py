from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from repository.preservation.object_store import StoreError, object_store


class Command(BaseCommand):
    help = (
        "Create the storage bucket (or folders) and the CORS rules browsers need to upload "
        "parts directly (PUT, GET, HEAD; ETag exposed). Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--origin",
            action="append",
            dest="origins",
            help="An origin allowed to upload, e.g. https://kura.example.org (repeatable). "
            "Default: KURA_UPLOAD_CORS_ORIGINS.",
        )

    def handle(self, *args, origins=None, **options):
        try:
            summary = object_store().setup(
                cors_origins=origins or settings.KURA_UPLOAD_CORS_ORIGINS
            )
        except StoreError as exc:
            raise CommandError(f"Storage setup failed: {exc}") from exc
        self.stdout.write(summary)
