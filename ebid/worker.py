"""Celery entry point: ``celery -A ebid.worker worker`` and ``celery -A ebid.worker beat`` (exactly one beat).

The Flask app is built here, in the worker process, from the same environment as the web processes
(``EBID_DATABASE_URL``, ``EBID_REDIS_URL``, ``EBID_DATA_DIR``...); every task runs inside its app context.
Without ``EBID_REDIS_URL`` there is no broker to consume from: tasks already run inside the web process.
"""

from __future__ import annotations

import logging

from core.tasks import celery_of
from ebid.app import create_app

flask_app = create_app()
celery = celery_of(flask_app)

if celery.conf.task_always_eager:
    logging.getLogger(__name__).warning(
        "EBID_REDIS_URL is not set: tasks run inside the web process and this worker will receive nothing")
