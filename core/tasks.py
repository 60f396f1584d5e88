"""Background jobs (后台任务) with Celery, inside the Flask app.

Domains declare tasks with :func:`task` in their ``tasks.py`` (small, idempotent, ids not objects,
JSON arguments) and periodic ones with :func:`periodic`; services queue work with :func:`enqueue`,
which sends only after the transaction commits. A task runs in the app context and is its own
transaction boundary: it commits when it returns and rolls back when it raises.

Modes. With a Redis URL, Redis is broker and result backend and ``celery -A ebid.worker worker``
(plus exactly one ``celery -A ebid.worker beat``) run the tasks. Without Redis (the embedded demo)
tasks run in-process at send time (``task_always_eager``); eager mode ignores countdowns. Test
settings run eagerly too, so that suites stay deterministic; ``settings.extra["celery_always_eager"]``
overrides either default. Whatever the mode, a task sent by :func:`enqueue` never fails the committed
transaction that sent it: a broker error, or an eager task's own error, is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery, Task, shared_task
from celery.schedules import crontab
from flask import Flask, current_app
from kombu.utils import json as kombu_json

from core.audit_verify import anchor_now
from core.config import Settings
from core.db import after_commit, db

log = logging.getLogger(__name__)

_PERIODIC: dict[str, dict[str, Any]] = {}


def task(name: str, **options: Any) -> Callable:
    """Declare a task named ``name`` (``"<domain>.<verb>"``); options go to Celery's ``shared_task``."""
    return shared_task(name=name, **options)


def periodic(name: str, schedule: float | timedelta | crontab, *, args: tuple = (),
             kwargs: dict[str, Any] | None = None) -> None:
    """Run the task ``name`` on ``schedule`` (seconds, timedelta or crontab) under Celery beat."""
    _PERIODIC[name] = {"task": name, "schedule": schedule, "args": tuple(args), "kwargs": dict(kwargs or {})}


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The periodic tasks declared so far, as Celery's ``beat_schedule``."""
    return {name: dict(entry) for name, entry in _PERIODIC.items()}


def is_eager(settings: Settings) -> bool:
    """Whether tasks run in-process at send time (no Redis, or test settings, unless overridden)."""
    override = settings.extra.get("celery_always_eager")
    if override is not None:
        return bool(override)
    return not settings.redis_url or settings.testing


def init_celery(app: Flask, settings: Settings) -> Celery:
    """Create the Celery app for ``app``: JSON only, late acks, Beijing schedule, app-context tasks."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                try:
                    result = self.run(*args, **kwargs)
                    db.session.commit()
                    return result
                except BaseException:
                    db.session.rollback()
                    raise

    eager = is_eager(settings)
    broker = None if eager else settings.redis_url
    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=broker or "memory://",
        result_backend=broker,
        task_always_eager=eager,
        task_eager_propagates=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        timezone=settings.timezone,
        enable_utc=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,  # a worker that dies mid-task leaves it to be run again
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # fire-and-forget by default; a task that returns data opts in
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule=beat_schedule(),
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def celery_of(app: Flask) -> Celery:
    """The Celery app created for ``app`` by :func:`init_celery`."""
    return app.extensions["celery"]


def enqueue(task: Any, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` (a task or its name) with JSON arguments once the current transaction commits.

    Arguments are encoded now, as the broker would encode them, so that an object passed where an id
    belongs fails inside the service, in eager mode too (eager runs skip serialisation).
    """
    kombu_json.dumps([args, kwargs])
    celery_app = celery_of(current_app)
    name = task if isinstance(task, str) else task.name
    registered = celery_app.tasks.get(name)
    if registered is None and celery_app.conf.task_always_eager:
        raise LookupError(f"task {name!r} is not registered in this process (import its tasks module)")
    after_commit(lambda: _send(celery_app, name, registered, args, kwargs))


def _send(celery_app: Celery, name: str, registered: Task | None, args: tuple, kwargs: dict) -> None:
    # Runs inside the session's after_commit hook: an exception escaping here would leave the caller's
    # session unusable and skip the other after-commit callbacks, while the transaction is already
    # committed. So failures are logged, never raised; in eager mode that includes the task's own error.
    try:
        if registered is not None:
            registered.apply_async(args, kwargs)
        else:
            celery_app.send_task(name, args, kwargs)
    except Exception:
        log.exception("task %s failed (eager run or queueing after commit)", name)


# -- the kernel's own periodic task ---------------------------------------------------------------

@task("audit.anchor")
def anchor_audit_head() -> str:
    """Append the audit trail's current head to the anchors file (as ``ebid audit head`` does)."""
    return anchor_now(current_app.extensions["ebid.settings"].data_dir)


periodic("audit.anchor", crontab(minute=0))
