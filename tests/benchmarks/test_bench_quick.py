"""The benchmarks run, and their correctness parts hold: envelopes open, no bid lost, none accepted late.

Timings are not asserted (they belong in benchmarks/README.md, not in a test). The surge benchmark
needs PostgreSQL (EBID_TEST_DATABASE_URL) and makes its own database ``bench_surge_quick`` there.
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


def _run(script: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_seal_throughput_quick(tmp_path):
    out = tmp_path / "seal.json"
    done = _run("seal_throughput.py", "--quick", "--pairs", "1", "--dir", str(tmp_path), "--json", str(out),
                timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [s["mib"] for s in result["sizes"]] == [1, 10]
    for size in result["sizes"]:
        for op in ("seal", "open", "verify", "seal-null", "open-null"):
            measured = size["pairs"][0]["app"][op]
            assert measured["bytes"] == size["mib"] << 20  # every operation saw the whole plaintext
            assert measured["seconds"] > 0
        assert size["app"]["seal"]["extra_rss_mib"] < 64  # streaming: no copy of the file in memory
    assert list(tmp_path.iterdir()) == [out]  # the temp files are gone


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL.startswith("postgres"),
                    reason="the deadline surge needs PostgreSQL: set EBID_TEST_DATABASE_URL")
def test_deadline_surge_quick(tmp_path):
    out = tmp_path / "surge.json"
    done = _run("deadline_surge.py", "--quick", "--pg-url", PG_URL, "--db-name", f"bench_surge_quick_{os.getpid()}",
                "--port", "0", "--workdir", str(tmp_path), "--json", str(out), timeout=600)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    report = json.loads(out.read_text())
    assert set(report["summary"]) == {"spread", "burst"}
    for scenario, s in report["summary"].items():
        assert s["lost"] == 0, (scenario, report["runs"])
        assert s["late_accepted"] == 0, (scenario, report["runs"])
        assert s["unreceipted"] == 0 and s["unexpected_failures"] == 0, (scenario, report["runs"])
        assert s["receipts"] + s["refused_late"] == 30
        assert s["baseline_failed"] == 0
    for run in report["runs"]:
        checks = run["app"]["checks"]
        assert checks["closing_matches"] and not checks["log_problems"]
    assert report["summary"]["spread"]["receipts"] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["surge.json"]  # data dir removed
