"""The embargo lift through Redis to a real Celery worker: once, then nothing."""

import datetime

import pytest
from django.utils import timezone

from core.vocabularies import Tier
from repository.models import AuditEvent, DataObject
from repository.tasks import embargo_lift_task
from tests.factories import DataObjectFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_lifts_a_due_embargo_once(celery_worker_process):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    due = DataObjectFactory(tier=Tier.EMBARGOED, available_date=tomorrow)
    DataObject.objects.filter(pk=due.pk).update(available_date=timezone.localdate())
    waiting = DataObjectFactory(tier=Tier.EMBARGOED, available_date=tomorrow)

    first = embargo_lift_task.apply_async(ignore_result=False).get(timeout=60)
    second = embargo_lift_task.apply_async(ignore_result=False).get(timeout=60)

    assert (first, second) == ({"lifted": 1}, {"lifted": 0})
    due.refresh_from_db()
    waiting.refresh_from_db()
    assert (due.tier, waiting.tier) == (Tier.PUBLIC, Tier.EMBARGOED)
    event = AuditEvent.objects.get()
    assert (event.action, event.data_object, event.actor) == (
        AuditEvent.Action.EMBARGO_LIFTED,
        due,
        None,
    )
