"""Where the checksum worker's CPU goes for small objects (not collected: run by path).

``pytest -s tests/repository/profile_checksum.py``: 1 MB objects are stored in the suite's
SeaweedFS and verified in this process on its real PostgreSQL and Redis, one task per object
(``kura.checksum``) and in groups (``kura.checksum_many``); prints CPU ms, SQL queries,
Redis commands and S3 requests per object of each, and writes a CPU profile (cProfile) of
each to $KURA_PROFILE_DIR (default: the temporary folder).
"""

import cProfile
import os
import pstats
import tempfile
import time
from collections import Counter

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from repository.models import DataObject
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory

from .profile_upload_batch import Calls
from .stored_objects import digests

OBJECTS = int(os.environ.get("KURA_PROFILE_OBJECTS", "200"))
SIZE = 1024 * 1024


def stored_objects(member, record, count: int, label: str) -> list[int]:
    client = default_storage.connection.meta.client
    ids = []
    for n in range(count):
        data = os.urandom(SIZE)
        data_object = DataObjectFactory(
            project=member.project,
            record=record,
            uploaded_by=member.user,
            original_filename=f"{label}_{n:04d}.bin",
            size=SIZE,
            status=DataObject.Status.STORED,
            checksum_state=DataObject.ChecksumState.PENDING,
            client_sha256=digests(data)[0],
        )
        client.put_object(
            Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=data_object.storage_key, Body=data
        )
        ids.append(data_object.pk)
    return ids


def profiled(label: str, run, count: int) -> None:
    with CaptureQueriesContext(connection) as queries, Calls() as calls:
        profile = cProfile.Profile(time.process_time)
        cpu = time.process_time()
        profile.enable()
        run()
        profile.disable()
        cpu = time.process_time() - cpu
    print(
        f"\n{label}: CPU {cpu * 1000 / count:.2f} ms/object (under cProfile);"
        f" SQL {len(queries) / count:.2f}/object;"
        f" Redis {calls.counts['redis'] / count:.2f}/object;"
        f" S3 {calls.counts['s3'] / count:.2f}/object"
    )
    out = os.environ.get("KURA_PROFILE_DIR") or tempfile.gettempdir()
    pstats.Stats(profile).dump_stats(os.path.join(out, f"kura-{label}.prof"))


def plain(label: str, run, count: int) -> None:
    cpu = time.process_time()
    run()
    cpu = time.process_time() - cpu
    print(f"\n{label}: CPU {cpu * 1000 / count:.2f} ms/object")


@pytest.mark.django_db(transaction=True)
def test_profile_checksum():
    from repository import tasks

    member = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=member.project)
    warm = stored_objects(member, record, 4, "warm")
    for pk in warm:
        tasks.checksum_task.apply(args=(pk,))
    group_task = getattr(tasks, "checksum_many_task", None)
    runs = [("one", lambda ids: [tasks.checksum_task.apply(args=(pk,)) for pk in ids])]
    if group_task is not None:
        group = settings.KURA_CHECKSUM_GROUP_SIZE
        runs.append(
            (
                "many",
                lambda ids: [
                    group_task.apply(args=(ids[n : n + group],)) for n in range(0, len(ids), group)
                ],
            )
        )
    for label, run in runs:
        for measure in (plain, profiled):
            ids = stored_objects(member, record, OBJECTS, f"{label}{measure.__name__}")
            measure(f"{label}-{measure.__name__}", lambda run=run, ids=ids: run(ids), OBJECTS)
            states = Counter(
                DataObject.objects.filter(pk__in=ids).values_list("checksum_state", flat=True)
            )
            assert states == {DataObject.ChecksumState.VERIFIED: OBJECTS}, states
