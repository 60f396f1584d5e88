"""Opening throughput (开标解密): unseal and verify N bids of 20 MiB against ``openssl enc`` + ``sha256sum``.

The target of ``PERFORMANCE.md``: opening 100 bids of 20 MiB, throughput per byte at least that of
the sealing baseline (``openssl enc -aes-256-ctr`` of the same bytes, then ``sha256sum`` of the output,
per envelope; a stricter variant hashes with ``openssl dgst -sha256``).

Setup (``opening_setup.py``): a tender at its opening with N real bid ZIPs (``bid.json`` + one random
document), sealed by each bidder, uploaded and finalized through the bids API, closed at the deadline,
decryption started by the host and every content key sent by its bidder (``submit_content_key``).

Application rows, each in its own worker process that reports its peak RSS (reset just before):

* ``process_pending``: the opening's real decrypting step (``bidding.opening_process``): for each queued
  bid, claim the row, decrypt the stored envelope streaming into a temp file, check the signature and
  context, store the plaintext content-addressed (hash + fsync), read and check ``bid.json`` and every
  document's SHA-256, commit the row, the audit record and the hall event;
* ``open_file`` with the content key each bidder sent (crypto + output file only);
* ``open_file`` with the tender's opening key rebuilt from two custodians' shares (HPKE unwrap first).

The scale curve repeats this for the first 10, 50 and N bids; between runs the decrypted rows are put
back in the queue (benchmark only, see ``opening_setup.requeue``). Pairs alternate application and
baseline; medians and ratios (baseline seconds / application seconds on the same envelopes) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import opening_setup as setup  # noqa: E402
from seal_throughput import _reset_peak, _status_kib, machine  # noqa: E402
from surge_setup import PgServer, make_app, server_env  # noqa: E402

MIB = 1 << 20
APP_OPS = ("process_pending", "open_file content key", "open_file opening key")
BASELINES = ("openssl enc + sha256sum", "openssl enc + openssl dgst")


# --- workers (one operation per process) -----------------------------------------------------------------

def _worker_env() -> dict[str, str]:
    return {"EBID_DATABASE_URL": os.environ["EBID_DATABASE_URL"], "EBID_DATA_DIR": os.environ["EBID_DATA_DIR"]}


def _warm_up() -> None:
    """First-use costs of the process (imports, tables), not of the bids."""
    from crypto import envelope as E
    from crypto.keys import generate_private_key
    key = generate_private_key()
    sealed = E.seal_bytes(b"warm-up", signer=key, recipients=[E.Recipient(E.ROLE_BIDDER, key.public_key())])
    E.open_bytes(sealed, signer_public_key=key.public_key(), private_keys=[key])


def worker_decrypt(tender_id: int) -> dict:
    """Run the opening's decrypting step over the queued bids of the tender."""
    from sqlalchemy import select

    from bidding.opening_process import process_pending
    from bidding.sealed_models import Bid
    from core.db import db

    app = make_app(_worker_env())
    with app.app_context():
        _warm_up()
        db.session.scalar(select(Bid.id).limit(1))
        peak_reset, rss_before = _reset_peak(), _status_kib("VmRSS")
        start = time.perf_counter()
        done = process_pending(tender_id)
        seconds = time.perf_counter() - start
        db.session.remove()
    return {"seconds": seconds, "bids": done, "rss_before_kib": rss_before, "peak_reset": peak_reset,
            "peak_rss_kib": _status_kib("VmHWM")}


def worker_open(job_path: Path) -> dict:
    """``open_file`` each envelope of the job into a temp file (removed after each), with the key given."""
    from cryptography.hazmat.primitives import serialization

    from crypto import envelope as E

    job = json.loads(job_path.read_text())
    out = Path(job["out"])
    tender_key = (serialization.load_pem_private_key(Path(job["opening_key"]).read_bytes(), password=None)
                  if job.get("opening_key") else None)
    signers = {p: serialization.load_pem_private_key(Path(p).read_bytes(), password=None).public_key()
               for p in {b["signer"] for b in job["bids"]}}
    _warm_up()
    peak_reset, rss_before = _reset_peak(), _status_kib("VmRSS")
    total = 0
    start = time.perf_counter()
    for b in job["bids"]:
        keys = {"private_keys": [tender_key]} if tender_key else {"content_key": bytes.fromhex(b["key"])}
        info = E.open_file(b["envelope"], out, signer_public_key=signers[b["signer"]],
                           expected_context=bytes.fromhex(b["context"]), **keys)
        total += info.plaintext_length
        out.unlink()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bids": len(job["bids"]), "bytes": total, "rss_before_kib": rss_before,
            "peak_reset": peak_reset, "peak_rss_kib": _status_kib("VmHWM")}


# --- driver ------------------------------------------------------------------------------------------------

def _run_worker(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", *args], env=env, capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _baseline(paths: list[str], scratch: Path, hasher: list[str]) -> float:
    """openssl enc -aes-256-ctr of each envelope to a file, then hash that file; total seconds."""
    total = 0.0
    for path in paths:
        key, iv = os.urandom(32).hex(), os.urandom(16).hex()
        start = time.perf_counter()
        subprocess.run(["openssl", "enc", "-aes-256-ctr", "-K", key, "-iv", iv, "-in", path, "-out", str(scratch)],
                       check=True, timeout=600)
        subprocess.run([*hasher, str(scratch)], check=True, stdout=subprocess.DEVNULL, timeout=600)
        total += time.perf_counter() - start
        scratch.unlink()
    return total


class Bench:
    """The seeded opening and the runs over its first N bids."""

    def __init__(self, tmp: Path, env: dict[str, str], parties: dict, run, zips: list[dict], keys: list[dict],
                 opening_key: Path) -> None:
        self.tmp, self.env, self.parties, self.run, self.zips, self.keys = tmp, env, parties, run, zips, keys
        self.opening_key = opening_key
        self.worker_env = {**{k: v for k, v in os.environ.items() if not k.startswith("EBID_")}, **env}

    def _job(self, n: int, with_opening_key: bool) -> Path:
        path = self.tmp / "job.json"  # holds content keys: inside the run's temp dir, removed with it
        bids = [{"envelope": k["envelope_path"], "context": k["context"].hex(), "key": k["key"].hex(),
                 "signer": str(self.parties["bidders"][k["index"]]["key_path"])} for k in self.keys[:n]]
        path.write_text(json.dumps({"out": str(self.tmp / "opened.zip"), "bids": bids,
                                    "opening_key": str(self.opening_key) if with_opening_key else None}))
        return path

    def decrypt(self, n: int, requeue: bool = True) -> dict:
        if requeue:
            setup.requeue(self.env, self.run, self.keys[:n])
        result = _run_worker(self.worker_env, "decrypt", str(self.run.tender_id))
        result["check"] = setup.check_opened(self.env, self.run, self.keys[:n], self.zips)
        result["bytes"] = sum(self.zips[k["index"]]["size"] for k in self.keys[:n])
        return result

    def application(self, n: int) -> dict:
        out = {APP_OPS[0]: self.decrypt(n)}
        out[APP_OPS[1]] = _run_worker(self.worker_env, "open", str(self._job(n, False)))
        out[APP_OPS[2]] = _run_worker(self.worker_env, "open", str(self._job(n, True)))
        (self.tmp / "job.json").unlink()
        return out

    def baselines(self, n: int) -> dict:
        paths = [k["envelope_path"] for k in self.keys[:n]]
        scratch = self.tmp / "baseline.ctr"
        return {BASELINES[0]: _baseline(paths, scratch, ["sha256sum"]),
                BASELINES[1]: _baseline(paths, scratch, ["openssl", "dgst", "-sha256"])}

    def pair(self, n: int, app_first: bool) -> dict:
        if app_first:
            app = self.application(n)
            base = self.baselines(n)
        else:
            base = self.baselines(n)
            app = self.application(n)
        return {"app_first": app_first, "app": app, "baseline": base}


def prepare(tmp: Path, database_url: str, n: int, mib: float) -> tuple[Bench, dict]:
    """Seed the opening through ebid's services; return the bench and the setup's own timings."""
    data_dir = tmp / "data"
    env = server_env(database_url, data_dir)
    timings: dict = {}
    t = time.perf_counter()
    setup.create_schema(env)
    parties = setup.seed(env, n, tmp / "keys")
    run = setup.publish(env, parties, f"BENCH-OPEN-{os.getpid()}")
    timings["seed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    zips = setup.build_zips(tmp / "zips", run.lot_code, n, mib)
    timings["build_zips_s"] = time.perf_counter() - t
    t = time.perf_counter()
    envelopes = setup.seal(run, parties, zips, tmp / "sealed")
    for z in zips:
        z["path"].unlink()
        z["path"] = str(z["path"])
    timings["seal_s"] = time.perf_counter() - t
    t = time.perf_counter()
    setup.upload_all(env, run, parties, envelopes)
    timings["upload_s"] = time.perf_counter() - t
    setup.open_hall(env, run, parties)
    keys = setup.content_keys(env, run, parties)
    submits = setup.submit_keys(env, run, parties, keys)
    timings["submit_key_s"] = {"median": statistics.median(submits), "max": max(submits), "total": sum(submits)}
    opening_key = setup.opening_key(env, run, parties, tmp / "keys" / "opening.pem")
    return Bench(tmp, env, parties, run, zips, keys, opening_key), timings


def summarise(n: int, raw: list[dict], load: tuple[float, float]) -> dict:
    med = statistics.median
    mib = sum(p["app"][APP_OPS[0]]["bytes"] for p in raw[:1]) / MIB
    out: dict = {"bids": n, "mib": mib, "load_before": load[0], "load_after": load[1], "pairs": raw,
                 "baseline": {}, "app": {}}
    for name in BASELINES:
        s = med(p["baseline"][name] for p in raw)
        out["baseline"][name] = {"median_s": s, "mib_s": mib / s}
    for op in APP_OPS:
        s = med(p["app"][op]["seconds"] for p in raw)
        out["app"][op] = {
            "median_s": s, "mib_s": mib / s, "per_bid_s": s / n,
            "ratio": {name: med(p["baseline"][name] / p["app"][op]["seconds"] for p in raw) for name in BASELINES},
            "peak_rss_mib": max(p["app"][op]["peak_rss_kib"] for p in raw) / 1024,
            "extra_rss_mib": max(p["app"][op]["peak_rss_kib"] - p["app"][op]["rss_before_kib"] for p in raw) / 1024}
    return out


def print_scale(s: dict) -> None:
    print(f"\n{s['bids']} bids, {s['mib']:.0f} MiB, {len(s['pairs'])} pairs, "
          f"load {s['load_before']:.2f} -> {s['load_after']:.2f}")
    for name, b in s["baseline"].items():
        print(f"  {'baseline: ' + name:38s} {b['median_s']:8.2f} s {b['mib_s']:7.0f} MiB/s")
    for op, a in s["app"].items():
        r = a["ratio"]
        print(f"  {op:38s} {a['median_s']:8.2f} s {a['mib_s']:7.0f} MiB/s  {a['per_bid_s'] * 1000:6.0f} ms/bid  "
              f"ratio {r[BASELINES[0]]:5.2f} (vs dgst {r[BASELINES[1]]:5.2f})  peak RSS {a['peak_rss_mib']:6.1f} MiB "
              f"(+{a['extra_rss_mib']:.1f})")
    sys.stdout.flush()


def measure(args) -> dict:
    pg = PgServer.from_url(args.pg_url) if args.pg_url else None
    result: dict = {"machine": machine(), "database": "postgresql" if pg else "sqlite", "bid_mib": args.mib}
    with tempfile.TemporaryDirectory(prefix="ebid-opening-bench-", dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        need = int(3.2 * args.bids * args.mib * MIB) + 256 * MIB  # ZIPs and envelopes, store, plaintexts
        if shutil.disk_usage(tmp).free < need:
            raise SystemExit(f"{tmp}: {shutil.disk_usage(tmp).free // MIB} MiB free, {need // MIB} MiB needed")
        if pg:
            pg.recreate(args.db_name)
            url = pg.url(args.db_name)
        else:
            url = f"sqlite:///{tmp / 'bench.sqlite3'}"
        try:
            bench, result["setup"] = prepare(tmp, url, args.bids, args.mib)
            print(f"setup: {json.dumps(result['setup'])}")
            print("benchmark-only shortcuts: the bid deadline is moved with one UPDATE; between timed runs the "
                  "decrypted rows are requeued with their bidders' keys (UPDATE) and the plaintexts removed")
            first = bench.decrypt(args.bids, requeue=False)
            result["first_run"] = first
            print(f"first decrypting run after the real key submissions: {first['bids']} bids in "
                  f"{first['seconds']:.2f} s, problems: {first['check']['problems'][:3]}, phase {first['check']['phase']}")
            result["scales"] = []
            for n in args.scales:
                load_before = os.getloadavg()[0]
                raw = [bench.pair(n, app_first=not i % 2) for i in range(args.pairs)]
                result["scales"].append(summarise(n, raw, (load_before, os.getloadavg()[0])))
                print_scale(result["scales"][-1])
        finally:
            from core.db import db
            with make_app(server_env(url, tmp / "data")).app_context():
                db.engine.dispose()  # before the database is dropped
            if pg and not args.keep:
                pg.drop(args.db_name)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bids", type=int, default=100, help="bids in the tender (at least 3)")
    parser.add_argument("--mib", type=float, default=20, help="size of each bid ZIP in MiB")
    parser.add_argument("--scales", default="10,50,100", help="comma-separated numbers of bids to open per run")
    parser.add_argument("--pairs", type=int, default=3, help="alternating application/baseline pairs per scale")
    parser.add_argument("--quick", action="store_true", help="5 bids of 1 MiB, scales 3 and 5, 1 pair")
    parser.add_argument("--pg-url", default=None, help="PostgreSQL server URL (default: SQLite in the temp dir)")
    parser.add_argument("--db-name", default="bench_d_opening", help="database created on --pg-url for the run")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--dir", type=Path, default=None, help="where the temp dir goes")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        op, arg = args.worker
        print(json.dumps(worker_decrypt(int(arg)) if op == "decrypt" else worker_open(Path(arg))))
        return 0
    if args.quick:
        args.bids, args.mib, args.scales, args.pairs = 5, 1.0, "3,5", 1
    args.scales = [int(s) for s in str(args.scales).split(",") if s.strip()]
    if args.bids < 3 or not args.scales or max(args.scales) > args.bids or min(args.scales) < 1 or args.pairs < 1:
        parser.error("give at least 3 bids (a lot with fewer fails), scales between 1 and --bids, and a pair")
    for tool in ("openssl", "sha256sum"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed; the baseline needs it")
    started = time.time()
    result = measure(args)
    result["wall_s"] = time.time() - started
    print(f"\nmachine: {result['machine']}, database {result['database']}, {result['wall_s']:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
