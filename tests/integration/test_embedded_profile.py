"""The embedded profile runs a real Celery worker with no broker server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_settings import PROFILE_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.integration

SEND_TASK = """
import json
import django
django.setup()
from repository.tasks import health_check_task
print(json.dumps(health_check_task.delay().get(timeout=60)))
"""


def test_a_task_reaches_a_worker_through_the_filesystem_broker(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="true",  # development mode, as bin/run sets it (the default is production)
        KURA_VAR_DIR=str(tmp_path),
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "config", "worker", "--pool=solo", "--loglevel=WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", SEND_TASK],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=20)

    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout)
    assert checks["database"]["ok"] and checks["database"]["detail"] == "sqlite"
    assert checks["storage"]["ok"] and checks["storage"]["detail"] == "filesystem"
    assert (tmp_path / "kura.sqlite3").exists()
