"""``manage.py kura_tally``: the dashboard's tallies against a recount of the objects."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from repository.tally import tally_mismatches, tally_rebuild


class Command(BaseCommand):
    help = (
        "Compare the dashboard's tallies (repository/tally.py) with a recount of the stored"
        " objects and list the rows that differ; with --rebuild, start them again from the"
        " objects (also after changing TIME_ZONE, whose months they count in)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="Rebuild the tallies.")
        parser.add_argument("--project", type=int, help="Check one project only.")

    def handle(self, *args, rebuild: bool, project: int | None, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Tallies are kept on PostgreSQL only; SQLite counts the objects.")
        if rebuild:
            tally_rebuild()
            self.stdout.write("tallies rebuilt from the objects")
            return
        mismatches = tally_mismatches(project_id=project)
        for row in mismatches:
            grouping = " ".join(
                f"{name}={value}"
                for name, value in row.items()
                if name not in ("table", "counted", "tallied")
            )
            self.stdout.write(
                f"{row['table']} {grouping}: objects {row['counted']} tallied {row['tallied']}"
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} tally rows differ; run with --rebuild.")
        self.stdout.write("tallies match the objects")
