import pytest

from repository.tasks import health_check_task

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_task_travels_through_redis_to_a_real_worker(celery_worker_process):
    result = health_check_task.delay()

    outcome = result.get(timeout=30)

    assert result.successful()
    assert outcome["database"]["ok"], outcome
    assert outcome["database"]["detail"] == "postgresql"
    assert outcome["storage"]["ok"], outcome
    assert outcome["storage"]["detail"] == "s3"
    assert "broker" not in outcome
