"""Realtime publisher (实时推送): Socket.IO events sent after the transaction commits.

Services never touch sockets. They call :func:`publish`, which queues the event on the current
transaction; it is sent once the transaction commits and dropped on rollback. Domain namespaces
(``sockets.py`` of each domain) authorise connections and room joins; this module only delivers.

Deployment: threading mode (``simple-websocket``) under ``gunicorn -w 1 -k gthread``. With a Redis URL
configured, every web process and every worker shares a Redis message queue, so an event published
anywhere reaches the clients of every process. The queue's channel is derived from the Redis
database number, so that installations sharing one Redis server on different databases stay apart
(Redis pub/sub itself ignores database numbers).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import urlparse

from flask import Flask
from flask_socketio import SocketIO
from socketio import Manager, RedisManager

from core.config import Settings
from core.db import after_commit

log = logging.getLogger(__name__)

socketio = SocketIO()
"""The process's Socket.IO server, bound to the app by :func:`init_realtime`."""

_external_emitters: dict[str, SocketIO] = {}


def channel_for(redis_url: str) -> str:
    """The pub/sub channel for ``redis_url`` (one per Redis database number)."""
    path = urlparse(redis_url).path.strip("/")
    return f"ebid-socketio-{path or '0'}"


def uses_message_queue(settings: Settings) -> bool:
    """Whether Socket.IO goes through Redis.

    Yes when a Redis URL is configured, except under test settings, where Flask-SocketIO's test
    client needs the in-process manager; ``settings.extra["realtime_message_queue"]`` overrides.
    """
    if not settings.redis_url:
        return False
    override = settings.extra.get("realtime_message_queue")
    return bool(override) if override is not None else not settings.testing


def init_realtime(app: Flask, settings: Settings) -> SocketIO:
    """Bind :data:`socketio` to ``app`` (threading mode, Redis message queue when configured)."""
    if uses_message_queue(settings):
        manager: Manager = RedisManager(settings.redis_url, channel=channel_for(settings.redis_url))
    else:
        manager = Manager()
    # The manager is passed explicitly (rather than message_queue=...) so that a later init_app in
    # the same process never inherits the previous app's queue.
    socketio.init_app(
        app,
        async_mode="threading",  # never auto-detect: eventlet would be picked first if installed
        client_manager=manager,
        cors_allowed_origins=None,  # None means same origin only; Socket.IO is not covered by CSRF
        logger=False,
        engineio_logger=False,
    )
    app.extensions["ebid.realtime"] = {"message_queue": uses_message_queue(settings)}
    return socketio


def external_emitter(redis_url: str) -> SocketIO:
    """A write-only emitter for processes without the web app (scripts): events go through Redis."""
    if redis_url not in _external_emitters:
        _external_emitters[redis_url] = SocketIO(message_queue=redis_url, channel=channel_for(redis_url),
                                                 async_mode="threading")
    return _external_emitters[redis_url]


def room(kind: str, object_id: Any) -> str:
    """The room name for one object, e.g. ``room("tender", 12) == "tender:12"``."""
    return f"{kind}:{object_id}"


def publish(event: str, data: Any, room: str | None = None, namespace: str = "/") -> None:
    """Send ``event`` with ``data`` to ``room`` (everyone if None) once the transaction commits.

    ``data`` must be JSON-serialisable; this is checked now, so that a bad payload fails inside the
    service instead of after the commit.
    """
    json.dumps(data)
    after_commit(lambda: _send(event, data, room, namespace))


def _send(event: str, data: Any, room: str | None, namespace: str) -> None:
    if socketio.server is None:
        log.error("realtime event %s dropped: init_realtime() was not called in this process", event)
        return
    try:
        socketio.emit(event, data, to=room, namespace=namespace)
    except Exception:  # the transaction is committed: a failed push must not fail the request
        log.exception("realtime event %s to room %s could not be sent", event, room)


def run_server(app: Flask, host: str = "127.0.0.1", port: int = 5000, **kwargs: Any) -> None:
    """Serve ``app`` with Socket.IO on Werkzeug (demo and development; production uses gunicorn)."""
    kwargs.setdefault("use_reloader", False)
    # Flask ignores app.run() inside its own CLI unless told otherwise; `ebid serve`/`ebid demo` mean it.
    os.environ.pop("FLASK_RUN_FROM_CLI", None)
    socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, **kwargs)
