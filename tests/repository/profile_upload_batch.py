"""Where the web's CPU goes for a batch of small files (not collected: run by path).

``pytest -s tests/repository/profile_upload_batch.py``: batches of 50 one-PUT files are
started and completed through the API on the suite's real PostgreSQL, Redis and SeaweedFS;
prints CPU ms per file of each request, SQL queries, Redis commands and S3 calls per file,
and writes a CPU profile (cProfile) of each endpoint to $KURA_PROFILE_DIR (default: the
temporary folder).
"""

import cProfile
import os
import pstats
import tempfile
import time
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from core.vocabularies import Tier
from tests.factories import DmpRecordFactory, MembershipFactory

from .upload_client import UploadClient, md5_base64

FILES = 50
ROUNDS = 4  # plain rounds (CPU), then as many instrumented ones


class Calls:
    """Counts Redis commands and S3 requests while active."""

    def __init__(self):
        self.counts = Counter()

    def __enter__(self):
        import botocore.httpsession
        import redis.connection

        self._patches = []
        for cls, name, label in (
            (redis.connection.Connection, "send_packed_command", "redis"),
            # every HTTP request to the store, through the client or around it
            (botocore.httpsession.URLLib3Session, "send", "s3"),
        ):
            original = getattr(cls, name)

            def counted(*args, _original=original, _label=label, **kwargs):
                self.counts[_label] += 1
                return _original(*args, **kwargs)

            setattr(cls, name, counted)
            self._patches.append((cls, name, original))
        return self

    def __exit__(self, *exc):
        for cls, name, original in self._patches:
            setattr(cls, name, original)


def measured(label, call, profiles, totals, instrumented: bool):
    """CPU of the plain rounds; queries, calls and a CPU profile of the instrumented ones."""
    if not instrumented:
        cpu = time.process_time()
        response = call()
        totals[label]["cpu"] += time.process_time() - cpu
        assert response.status_code == 200, response.content
        return response
    with CaptureQueriesContext(connection) as queries, Calls() as calls:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        response = call()
        profile.disable()
    assert response.status_code == 200, response.content
    profiles.setdefault(label, []).append(profile)
    totals[label]["queries"] += len(queries)
    totals[label]["redis"] += calls.counts["redis"]
    totals[label]["s3"] += calls.counts["s3"]
    return response


@pytest.mark.django_db(transaction=True)
def test_profile_upload_batch():
    member = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=member.project)
    client = UploadClient(member.user)
    profiles: dict[str, list] = {}
    totals = {label: Counter() for label in ("start", "complete")}
    for round_number in range(2 * ROUNDS + 1):
        instrumented = round_number > ROUNDS
        blobs = [os.urandom(1024) for _ in range(FILES)]
        items = [
            {
                "project": member.project_id,
                "record": record.pk,
                "filename": f"r{round_number}_{n:03d}.bin",
                "size": len(data),
                "content_type": "application/octet-stream",
                "tier": Tier.SHARED,
                "sha256": __import__("hashlib").sha256(data).hexdigest(),
                "md5": md5_base64(data),
                "single_put": True,
            }
            for n, data in enumerate(blobs)
        ]
        body = {"uploads": items, "skip_identical": True}
        if round_number == 0:  # warm-up
            started = client.post("/api/v1/uploads/batch/", body)
        else:
            started = measured(
                "start",
                lambda body=body: client.post("/api/v1/uploads/batch/", body),
                profiles,
                totals,
                instrumented,
            )
        answers = started.json()["uploads"]
        assert all(a["status"] == 201 for a in answers), answers[:2]
        completions = []
        for answer, data in zip(answers, blobs, strict=True):
            put = answer["upload"]["put"]
            etag = client.put_bytes(put["url"], data, put["headers"])
            completions.append(
                {"id": answer["upload"]["id"], "parts": [{"part_number": 1, "etag": etag}]}
            )
        body = {"uploads": completions}
        if round_number == 0:
            done = client.post("/api/v1/uploads/batch/complete", body)
        else:
            done = measured(
                "complete",
                lambda body=body: client.post("/api/v1/uploads/batch/complete", body),
                profiles,
                totals,
                instrumented,
            )
        assert all(a["status"] == 200 for a in done.json()["uploads"]), done.json()["uploads"][:2]
    files = FILES * ROUNDS
    out = os.environ.get("KURA_PROFILE_DIR") or tempfile.gettempdir()
    for label, total in totals.items():
        print(
            f"\n{label}: CPU {total['cpu'] * 1000 / files:.2f} ms/file;"
            f" SQL {total['queries'] / files:.2f}/file;"
            f" Redis {total['redis'] / files:.2f}/file; S3 {total['s3'] / files:.2f}/file"
        )
        stats = pstats.Stats(*profiles[label])
        stats.dump_stats(os.path.join(out, f"kura-batch-{label}.prof"))
    print(
        f"\ntotal: CPU {sum(t['cpu'] for t in totals.values()) * 1000 / files:.2f} ms/file",
    )
