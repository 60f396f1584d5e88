"""The deadline-surge baseline: a bare Flask app that streams an upload's body to disk and fsyncs it.

    BENCH_UPLOAD_DIR=/tmp/up gunicorn -w 1 -k gthread --threads 32 -b 127.0.0.1:18201 \
        --chdir benchmarks 'baseline_upload_app:app'

``PUT /upload/<name>`` writes the body in 1 MiB reads to ``BENCH_UPLOAD_DIR/<name>``, fsyncs the file
and its directory, and answers 201 with the size. No database, no authentication, no checks: what any
upload endpoint must do at the least, run under the same gunicorn setup as ebid (PERFORMANCE.md).

``BENCH_UPLOAD_DROP_CACHE=1`` (``deadline_surge.py --baseline-drop-cache``): a stricter variant that also
evicts the file's pages from the page cache after the fsync, as ebid does with a stored envelope.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, abort, jsonify, request

READ = 1 << 20

app = Flask(__name__)
UPLOAD_DIR = Path(os.environ.get("BENCH_UPLOAD_DIR", "baseline-uploads"))
UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
DROP_CACHE = os.environ.get("BENCH_UPLOAD_DROP_CACHE") == "1"


@app.get("/health")
def health():
    return jsonify(ok=True)


@app.put("/upload/<name>")
def upload(name: str):
    if not name.isalnum():
        abort(400)
    path = UPLOAD_DIR / name
    size = 0
    with open(path, "wb") as out:
        while True:
            chunk = request.stream.read(READ)
            if not chunk:
                break
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
        if DROP_CACHE:
            os.posix_fadvise(out.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    fd = os.open(UPLOAD_DIR, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return jsonify(name=name, size=size), 201


@app.delete("/upload/<name>")
def remove(name: str):
    if not name.isalnum():
        abort(400)
    (UPLOAD_DIR / name).unlink(missing_ok=True)
    return "", 204
