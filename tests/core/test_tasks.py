"""Celery wiring: tasks run after commit, inside the app, eagerly or on a real worker (memory and Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab
from sqlalchemy import func, select

import core.tasks as tasks_module
from core.actor import Actor
from core.audit import AuditEvent, current_head, record
from core.audit_verify import anchors_path, read_anchors
from core.db import db
from core.tasks import beat_schedule, celery_of, enqueue, is_eager, periodic, task
from ebid.app import create_app
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
needs_redis = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs EBID_TEST_REDIS_URL")


@task("tests.core.note")
def note(n: int) -> None:
    """Write an audit event from inside a task (needs the app context and a commit)."""
    record(Actor.system("worker"), "test.noted", "test", n, {"n": n})


@task("tests.core.note_then_fail")
def note_then_fail(n: int) -> None:
    record(Actor.system("worker"), "test.noted", "test", n)
    raise RuntimeError("task failed")


@task("tests.core.add", ignore_result=False)
def add(a: int, b: int) -> int:
    return a + b


def noted() -> list[str]:
    db.session.rollback()  # see what other transactions committed
    return db.session.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "test.noted")
                              .order_by(AuditEvent.seq)).all()


def wait_for(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_configuration(app):
    conf = celery_of(app).conf
    assert conf.task_serializer == conf.result_serializer == "json"
    assert conf.accept_content == ["json"] and conf.result_accept_content == ["json"]
    assert conf.timezone == "Asia/Shanghai" and conf.enable_utc is True
    assert conf.task_acks_late is True and conf.worker_prefetch_multiplier == 1
    assert conf.task_always_eager is True and conf.task_eager_propagates is True  # test settings


def test_redis_settings_use_redis_for_broker_and_results(settings):
    redis_url = "redis://127.0.0.1:1/9"  # nothing listens there: building the app must not connect
    app = create_app(replace(settings, redis_url=redis_url, testing=False))
    conf = celery_of(app).conf
    assert conf.task_always_eager is False
    assert conf.broker_url == redis_url and conf.result_backend == redis_url


@pytest.mark.parametrize("redis_url, testing, override, eager", [
    (None, False, None, True),           # embedded: in-process
    ("redis://h/0", False, None, False),  # production: Redis
    ("redis://h/0", True, None, True),    # test suite: deterministic
    ("redis://h/0", True, False, False),  # a test that wants the real broker
    (None, False, False, False),
])
def test_eager_or_not(settings, redis_url, testing, override, eager):
    extra = {} if override is None else {"celery_always_eager": override}
    assert is_eager(replace(settings, redis_url=redis_url, testing=testing, extra=extra)) is eager


def test_periodic_tasks_become_the_beat_schedule(app, monkeypatch):
    schedule = celery_of(app).conf.beat_schedule
    assert schedule["audit.anchor"]["task"] == "audit.anchor"
    assert schedule["audit.anchor"]["schedule"] == crontab(minute=0)  # hourly, on the hour
    monkeypatch.setattr(tasks_module, "_PERIODIC", dict(tasks_module._PERIODIC))  # leave the registry as found
    periodic("tests.core.note", 30.0, args=(1,))
    assert beat_schedule()["tests.core.note"] == {"task": "tests.core.note", "schedule": 30.0,
                                                  "args": (1,), "kwargs": {}}


def test_eager_task_runs_after_commit_not_before(app):
    record(Actor.system("test"), "test.started", "test", 0)
    enqueue(note, 2)
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "test.noted")) == 0
    db.session.commit()
    assert noted() == ["2"]


def test_eager_task_does_not_run_after_rollback(app):
    record(Actor.system("test"), "test.started", "test", 0)
    enqueue(note, 3)
    db.session.rollback()
    db.session.commit()
    assert noted() == []


def test_eager_task_is_its_own_transaction(app, caplog):
    record(Actor.system("test"), "test.started", "test", 0)
    enqueue(note_then_fail, 4)
    db.session.commit()  # the caller's work is committed, the failing task's is rolled back
    assert noted() == []
    assert current_head().seq == 1
    assert "task tests.core.note_then_fail failed" in caplog.text and "RuntimeError: task failed" in caplog.text
    record(Actor.system("test"), "test.continued", "test", 0)  # the caller's session is still usable
    db.session.commit()
    assert current_head().seq == 2


def test_enqueue_by_name_and_unknown_names(app):
    enqueue("tests.core.note", 5)
    db.session.commit()
    assert noted() == ["5"]
    with pytest.raises(LookupError, match="not registered"):
        enqueue("tests.core.nonexistent")


def test_arguments_must_be_json(app):
    with pytest.raises(TypeError):
        enqueue(note, AuditEvent())  # an object where an id belongs
    db.session.commit()
    assert noted() == []


def test_anchor_task_appends_the_head(app, settings):
    record(Actor.system("test"), "test.started", "test", 0)
    db.session.commit()
    celery_of(app).tasks["audit.anchor"].delay()
    assert read_anchors(anchors_path(settings.data_dir)).anchors == [current_head()]


def _worker_app(settings, **conf):
    """An app whose Celery sends to a real broker instead of running tasks inline."""
    app = create_app(replace(settings, extra={"celery_always_eager": False}))
    celery_app = celery_of(app)
    celery_app.conf.update(**conf)
    return app, celery_app


def test_real_worker_on_memory_broker(app, settings):
    worker_app, celery_app = _worker_app(replace(settings, redis_url=None),
                                         broker_url="memory://", result_backend="cache+memory://",
                                         broker_transport_options={"polling_interval": 0.05})
    with worker_app.app_context(), start_worker(celery_app, pool="solo", perform_ping_check=False):
        assert celery_app.tasks["tests.core.add"].delay(2, 3).get(timeout=15) == 5
        enqueue(note, 6)
        record(Actor.system("test"), "test.started", "test", 0)
        time.sleep(0.3)
        assert noted() == []  # nothing was sent before the commit
        enqueue(note, 7)
        db.session.commit()
        assert wait_for(noted) == ["7"]


@needs_redis
def test_real_worker_through_redis(app, settings):
    # a queue of its own: never pick up messages left by other runs
    worker_app, celery_app = _worker_app(settings, task_default_queue=f"ebid-test-{os.getpid()}")
    assert celery_app.conf.broker_url == TEST_REDIS_URL
    with worker_app.app_context(), start_worker(celery_app, pool="solo", perform_ping_check=False):
        assert celery_app.tasks["tests.core.add"].delay(20, 22).get(timeout=15) == 42
        record(Actor.system("test"), "test.started", "test", 0)
        enqueue(note, 8)
        db.session.commit()
        assert wait_for(noted) == ["8"]


@needs_redis
def test_worker_entry_point_runs_the_anchor_task(app, settings):
    """``celery -A ebid.worker worker`` in its own process runs the kernel's periodic task."""
    record(Actor.system("test"), "test.started", "test", 0)
    db.session.commit()
    queue = f"ebid-test-worker-{os.getpid()}"
    env = {**os.environ, "EBID_DATA_DIR": str(settings.data_dir), "EBID_DATABASE_URL": settings.database_url,
           "EBID_REDIS_URL": TEST_REDIS_URL, "EBID_SECRET_KEY": "test-secret"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ebid.worker", "worker", "--pool=solo", "-Q", queue,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _, celery_app = _worker_app(settings)
        celery_app.send_task("audit.anchor", queue=queue)
        path = anchors_path(settings.data_dir)
        assert wait_for(lambda: path.exists() and read_anchors(path).anchors, timeout=60) == [current_head()]
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert b"Traceback" not in output, output.decode(errors="replace")
