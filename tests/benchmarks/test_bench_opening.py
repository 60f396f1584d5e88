"""The opening benchmarks run, and their correctness parts hold: every bid opens once, every update arrives.

Timings are not asserted (they belong in benchmarks/README.md, not in a test). The opening benchmark runs
on SQLite in its temp dir, and on PostgreSQL too when EBID_TEST_DATABASE_URL points there. The hall
benchmark needs PostgreSQL and Redis (EBID_TEST_DATABASE_URL, EBID_TEST_REDIS_URL); it makes its own
database there and uses the Redis database given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
PG_URL = os.environ.get("EBID_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("EBID_TEST_REDIS_URL", "")


def _run(script: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBID_") or k.startswith("EBID_TEST_")}
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _check_opening(result: dict) -> None:
    first = result["first_run"]
    assert first["bids"] == 5 and first["check"] == {"checked": 5, "problems": [], "phase": "decrypted"}
    assert [s["bids"] for s in result["scales"]] == [3, 5]
    for scale in result["scales"]:
        for pair in scale["pairs"]:
            decrypt = pair["app"]["process_pending"]
            assert decrypt["bids"] == scale["bids"]  # each queued bid decrypted once, none skipped
            assert decrypt["check"]["problems"] == [] and decrypt["check"]["phase"] == "decrypted"
            for op in ("open_file content key", "open_file opening key"):
                assert pair["app"][op]["bytes"] == decrypt["bytes"]  # the same plaintexts, whole
            assert all(s > 0 for s in pair["baseline"].values())
        assert scale["app"]["open_file content key"]["extra_rss_mib"] < 64  # streaming, no copy of a bid
        assert scale["app"]["process_pending"]["extra_rss_mib"] < 64


def test_opening_throughput_quick_sqlite(tmp_path):
    out = tmp_path / "opening.json"
    done = _run("opening_throughput.py", "--quick", "--dir", str(tmp_path), "--json", str(out), timeout=300)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    result = json.loads(out.read_text())
    assert result["database"] == "sqlite"
    _check_opening(result)
    assert [p.name for p in tmp_path.iterdir()] == ["opening.json"]  # temp dir, keys and plaintexts removed


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL.startswith("postgres"),
                    reason="the PostgreSQL run needs EBID_TEST_DATABASE_URL pointing at PostgreSQL")
def test_opening_throughput_quick_postgres(tmp_path):
    out = tmp_path / "opening.json"
    done = _run("opening_throughput.py", "--quick", "--pg-url", PG_URL, "--db-name",
                f"bench_d_opening_quick_{os.getpid()}", "--dir", str(tmp_path), "--json", str(out), timeout=300)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    result = json.loads(out.read_text())
    assert result["database"] == "postgresql"
    _check_opening(result)


@pytest.mark.postgres
@pytest.mark.skipif(not (PG_URL.startswith("postgres") and REDIS_URL.startswith("redis")),
                    reason="the hall benchmark needs PostgreSQL and Redis: set EBID_TEST_DATABASE_URL and "
                           "EBID_TEST_REDIS_URL")
def test_hall_broadcast_quick(tmp_path):
    out = tmp_path / "hall.json"
    done = _run("hall_broadcast.py", "--quick", "--pg-url", PG_URL, "--redis-url", REDIS_URL, "--db-name",
                f"bench_d_hall_quick_{os.getpid()}", "--workdir", str(tmp_path), "--json", str(out), timeout=300)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    result = json.loads(out.read_text())
    (scale,) = result["scales"]
    for kind in ("ebid", "baseline"):
        (pair,) = scale["pairs"]
        run = pair[kind]
        assert run["joined"] == run["clients"] == 20 and run["failed"] == 0, run["errors"]
        assert run["deliveries"] == run["expected"] == 20 * result["updates"]  # every update reached every client
        assert run["missing"] == 0 and run["duplicates"] == 0 and run["disconnected_early"] == 0
    assert scale["pairs"][0]["ebid"]["events"]["hall.state"] == 20  # ebid sends the state on join
    assert [p.name for p in tmp_path.iterdir()] == ["hall.json"]
