from django.core.management.base import BaseCommand, CommandError

from repository.demo import DemoDataError, demo_data_load


class Command(BaseCommand):
    help = (
        "Load the demo project, users and data objects once (a second run changes nothing) "
        "and print the demo logins. The password is KURA_DEMO_PASSWORD when set."
    )

    def handle(self, *args, **options):
        try:
            result = demo_data_load()
        except DemoDataError as exc:
            raise CommandError(str(exc)) from exc

        grant_number = result.project.japan_grant_number
        if result.created:
            self.stdout.write(self.style.SUCCESS(f"Loaded the demo project {grant_number}."))
        else:
            self.stdout.write(f"The demo project {grant_number} is already loaded; no change.")

        password = result.password or "(unknown)"
        width = max(len(login.username) for login in result.logins)
        role_width = max(len(login.role) for login in result.logins)
        self.stdout.write(f"{'username':<{width}}  {'role':<{role_width}}  password")
        for login in result.logins:
            self.stdout.write(f"{login.username:<{width}}  {login.role:<{role_width}}  {password}")
        if result.password is None:
            self.stdout.write(
                "The demo users keep the password of the first load; it is neither "
                "KURA_DEMO_PASSWORD nor the one in the demo-password file under KURA_VAR_DIR."
            )
