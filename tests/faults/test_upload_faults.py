"""The database lost between the store's completion and Kura's commit, for real.

Kura runs against a private PostgreSQL cluster (tests/private_services.py) and the
suite's SeaweedFS. A helper process (``manage.py shell``) starts an upload, sends its
parts to the store, and completes it with the store's ``complete`` wrapped so that the
whole PostgreSQL server is SIGKILLed right after the store has really assembled the
object: the bytes are in the bucket, the row still says ``uploading``. The cluster is
restarted, and the upload must reconcile: a retried completion over HTTP answers 200 with
the object stored; an upload nobody retries is adopted by the idle sweep.
"""

import json

import pytest

from tests.faults.kura_server import KuraServer, server_environment
from tests.private_services import PrivatePostgres

# Run by ``manage.py shell`` with KURA_FAULT_USER and KURA_FAULT_PIDFILE set.
LOSE_THE_COMMIT = """
import base64, hashlib, json, os, signal, subprocess, urllib.request
from django.contrib.auth import get_user_model
from repository.preservation import object_store, uploads

setup = json.loads(os.environ["KURA_FAULT_SETUP"])
actor = get_user_model().objects.get(username=setup["username"])
data = os.urandom(9 * 1024 * 1024 + 777)  # two parts
session = uploads.upload_start(actor=actor, request=uploads.UploadRequest(
    project_id=setup["project"], record_id=setup["record"], filename="lost-commit.bin",
    size=len(data), content_type="application/octet-stream", tier="shared",
))
etags = {}
for part in uploads.upload_part_urls(session=session, part_numbers=[1, 2]):
    body = data[(part.part_number - 1) * session.part_size:][: session.part_size]
    request = urllib.request.Request(part.url, data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=60) as answer:
        etags[part.part_number] = answer.headers["ETag"].strip('"')
print("KURA-FAULT " + json.dumps({
    "upload": session.pk, "object": session.data_object_id, "etags": etags,
    "sha256": hashlib.sha256(data).hexdigest(),
}), flush=True)

real_complete = object_store.S3Store.complete

def complete_then_lose_the_database(self, key, upload_id, parts):
    real_complete(self, key, upload_id, parts)
    pid = int(open(os.environ["KURA_FAULT_PIDFILE"]).read().split()[0])
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    for victim in [pid, *map(int, children.stdout.split())]:
        os.kill(victim, signal.SIGKILL)

object_store.S3Store.complete = complete_then_lose_the_database
try:
    uploads.upload_complete(session=session, parts=etags)
    outcome = "completed"
except Exception as exc:
    outcome = type(exc).__name__
print("KURA-FAULT-OUTCOME " + outcome, flush=True)
"""

SWEEP = """
import datetime
from django.utils import timezone
from repository.preservation.housekeeping import uploads_abandon_idle
from repository.models import DataObject
from repository.preservation.object_store import object_store
uploads_abandon_idle(now=timezone.now() + datetime.timedelta(days=30))
data_object = DataObject.objects.get(pk=%(object)d)
print("KURA-FAULT-SWEPT", data_object.status, object_store().head(data_object.storage_key).size)
"""


@pytest.fixture
def kura_on_private_postgres(tmp_path, s3_server):
    postgres = PrivatePostgres(tmp_path / "pg")
    postgres.start()
    server = None
    try:
        database_url = postgres.createdb("kura_upload_faults")
        server = KuraServer(
            server_environment(database_url=database_url, var_dir=tmp_path / "var"), tmp_path
        )
        server.prepare()
        yield server, postgres
    finally:
        if server is not None:
            server.stop()
        postgres.cleanup()


def _lose_a_commit(server: KuraServer, postgres: PrivatePostgres) -> dict:
    """Start, send and complete an upload while the database dies after the store's
    completion; restart the database; answer what the helper printed."""
    server.env["KURA_FAULT_SETUP"] = json.dumps(server.setup)
    server.env["KURA_FAULT_PIDFILE"] = str(postgres.data / "postmaster.pid")
    out = server.manage("shell", "-c", LOSE_THE_COMMIT)
    lines = out.splitlines()
    sent = json.loads(next(x for x in lines if x.startswith("KURA-FAULT ")).split(" ", 1)[1])
    outcome = next(x for x in lines if x.startswith("KURA-FAULT-OUTCOME ")).split(" ", 1)[1]
    assert outcome != "completed", "the database was not lost mid-completion"
    postgres.kill()  # already dead: this only waits until its port is closed
    postgres.start()  # recovers from the WAL: the completion was never committed
    return sent


def _state(server: KuraServer, object_id: int) -> str:
    out = server.manage(
        "shell",
        "-c",
        "from repository.models import DataObject;"
        f"print('KURA-STATE', DataObject.objects.get(pk={object_id}).status)",
    )
    return next(x for x in out.splitlines() if x.startswith("KURA-STATE")).split()[1]


def test_a_completion_whose_commit_was_lost_succeeds_when_retried(kura_on_private_postgres):
    server, postgres = kura_on_private_postgres
    sent = _lose_a_commit(server, postgres)
    assert _state(server, sent["object"]) == "uploading"
    server.start()

    parts = [{"part_number": int(n), "etag": e} for n, e in sorted(sent["etags"].items())]
    answer = server.request(
        "POST",
        f"/api/v1/uploads/{sent['upload']}/complete",
        body={"parts": parts, "sha256": sent["sha256"]},
        token=server.setup["token"],
    )

    assert answer.status == 200, answer.body[:500]
    body = answer.json()
    assert body["object_id"] == sent["object"]
    assert body["status"] == "stored"
    assert body["checksum_state"] == "pending"  # queued: the worker verifies it as usual
    assert _state(server, sent["object"]) == "stored"


def test_the_idle_sweep_adopts_a_completion_whose_commit_was_lost(kura_on_private_postgres):
    server, postgres = kura_on_private_postgres
    sent = _lose_a_commit(server, postgres)

    out = server.manage("shell", "-c", SWEEP % {"object": sent["object"]})

    swept = next(x for x in out.splitlines() if x.startswith("KURA-FAULT-SWEPT")).split()
    assert swept[1] == "stored"
    assert int(swept[2]) == 9 * 1024 * 1024 + 777
