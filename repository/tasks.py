from celery import shared_task

from .health import run_health_checks


@shared_task(name="kura.health_check")
def health_check_task() -> dict:
    """Database and storage as seen from a worker (the broker is how the task got here)."""
    return run_health_checks(include_broker=False)
