"""The opening-hall baseline: a bare Flask-SocketIO server that only joins clients to a room.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/4 gunicorn -w 1 -k gthread --threads 300 -b 127.0.0.1:18301 \
        --chdir benchmarks 'hall_baseline_app:app'

Threading mode (simple-websocket), a Redis message queue on its own channel, namespace ``/hall``:
``connect`` accepts anyone, ``join`` (a tender id) puts the connection in the room ``hall:<id>`` and
answers ``{"ok": true}``. No database, no authentication, no state: what any broadcast server must do
at the least, under the same gunicorn processes as ebid (PERFORMANCE.md). Broadcasts come from the
benchmark's emitter through Redis, as ebid's come from its services.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify
from flask_socketio import SocketIO, join_room
from socketio import RedisManager

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
CHANNEL = os.environ.get("BENCH_CHANNEL", "ebid-socketio-4-bench-baseline")

app = Flask(__name__)
socketio = SocketIO(app, async_mode="threading", client_manager=RedisManager(REDIS_URL, channel=CHANNEL),
                    cors_allowed_origins=None, logger=False, engineio_logger=False)


@app.get("/health")
def health():
    return jsonify(ok=True)


@socketio.on("connect", namespace="/hall")
def on_connect(auth=None):
    return True


@socketio.on("join", namespace="/hall")
def on_join(data):
    tender_id = data.get("tender_id") if isinstance(data, dict) else data
    join_room(f"hall:{int(tender_id)}")
    return {"ok": True}
