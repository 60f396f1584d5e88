"""The scoring-room baseline: a bare Flask-SocketIO server that only joins clients to a room.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/5 gunicorn -w 1 -k gthread --threads 300 -b 127.0.0.1:18401 \
        --chdir benchmarks 'rooms_baseline_app:app'

Threading mode (simple-websocket), a Redis message queue on its own channel, namespace ``/room``:
``connect`` accepts anyone, ``join`` ({evaluation_id}) puts the connection in the room
``evaluation:<id>`` and answers ``{"ok": true}``. No database, no authentication, no state: the least a
broadcast server must do, under the same gunicorn processes as ebid (PERFORMANCE.md, scoring rooms
评标室). Progress events come from the benchmark's write-only emitter through Redis.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify
from flask_socketio import SocketIO, join_room
from socketio import RedisManager

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
CHANNEL = os.environ.get("BENCH_CHANNEL", "ebid-socketio-5-bench-baseline")
NAMESPACE = "/room"

app = Flask(__name__)
socketio = SocketIO(app, async_mode="threading", client_manager=RedisManager(REDIS_URL, channel=CHANNEL),
                    cors_allowed_origins=None, logger=False, engineio_logger=False)


@app.get("/health")
def health():
    return jsonify(ok=True)


@socketio.on("connect", namespace=NAMESPACE)
def on_connect(auth=None):
    return True


@socketio.on("join", namespace=NAMESPACE)
def on_join(data):
    evaluation_id = data.get("evaluation_id") if isinstance(data, dict) else data
    join_room(f"evaluation:{int(evaluation_id)}")
    return {"ok": True}
