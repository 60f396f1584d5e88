"""Profile one bidder's submission in-process: create, PUT, finalize (or the single request), with SQL counts.

Seeds a throwaway PostgreSQL database with ``surge_setup`` (same services, same shortcut for the
deadline), then submits N sealed envelopes one after another through the Flask test client, timing
each step and counting SQL statements per step. ``--profile`` adds a cProfile of the finalize steps.
No concurrency: this shows the fixed cost per request, which the surge benchmark multiplies.
``--path single`` submits each envelope in one request (``POST .../lots/<l>/bids``, step ``single``);
``--path both`` alternates the two paths bidder by bidder.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import surge_setup as setup  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bidders", type=int, default=40)
    parser.add_argument("--mib", type=float, default=5)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="bench_finalize_profile")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--path", default="resumable", choices=["resumable", "single", "both"])
    parser.add_argument("--profile-step", default="finalize",
                        choices=["create", "status", "put", "finalize", "single"])
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--profile-out", help="also write the raw cProfile stats to this file (for pstats/snakeviz)")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of the fifth bidder")
    args = parser.parse_args(argv)

    from sqlalchemy import event

    pg = setup.PgServer.from_url(args.pg_url)
    pg.recreate(args.database)
    with tempfile.TemporaryDirectory(prefix="ebid-profile-") as tmp:
        work = Path(tmp)
        env = setup.server_env(pg.url(args.database), work / "data")
        setup.migrate(env)
        parties = setup.seed_parties(env, args.bidders, work / "keys")
        run = setup.publish_tender(env, parties, "PROFILE-1")
        from core.clock import now
        setup.move_deadline(env, run.tender_id, now() + timedelta(hours=1))
        plains = setup.write_plaintexts(work / "plain", 4, args.mib)
        envelopes = setup.seal_envelopes(run, parties.bidders, plains, work / "env")
        app = setup.make_app(env)
        from core.db import db
        with app.app_context():
            engine = db.engine
        counter = {"n": 0}
        shown = {"on": False}

        def count(_conn, _cursor, statement, *_args):
            counter["n"] += 1
            if shown["on"]:
                print("   SQL", " ".join(statement.split())[:150])

        event.listen(engine, "before_cursor_execute", count)
        client = app.test_client()
        steps = ("create", "status", "put", "finalize", "single")
        times: dict[str, list[float]] = {s: [] for s in steps}
        cpu: dict[str, list[float]] = {s: [] for s in steps}
        stmts: dict[str, list[int]] = {s: [] for s in steps}
        profiler = cProfile.Profile() if args.profile else None

        def step(name, method, url, **kwargs):
            counter["n"] = 0
            t, c = time.perf_counter(), time.process_time()
            if profiler and name == args.profile_step:
                profiler.enable()
            resp = getattr(client, method)(url, **kwargs)
            if profiler and name == args.profile_step:
                profiler.disable()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            stmts[name].append(counter["n"])
            return resp

        for n, env_ in enumerate(envelopes):
            shown["on"] = args.show_sql and n == 4
            bidder = parties.bidders[env_.bidder]
            headers = {"Authorization": f"Bearer {bidder.token}", "Accept-Language": "en"}
            body = env_.path.read_bytes()
            single = args.path == "single" or (args.path == "both" and n % 2 == 1)
            if single:
                if shown["on"]:
                    print("-- single")
                r = step("single", "post", f"/api/tenders/{run.tender_id}/lots/{run.lot_id}/bids?sha256={env_.sha256}",
                         data=body, headers={**headers, "Content-Type": "application/octet-stream"})
                assert r.status_code == 201, r.get_json()
                continue
            if shown["on"]:
                print("-- create")
            r = step("create", "post", f"/api/tenders/{run.tender_id}/lots/{run.lot_id}/uploads",
                     json={"size": env_.size, "sha256": env_.sha256}, headers=headers)
            assert r.status_code == 201, r.get_json()
            uid = r.get_json()["id"]
            r = step("status", "get", f"/api/uploads/{uid}", headers=headers)
            assert r.status_code == 200, r.get_json()
            if shown["on"]:
                print("-- put")
            r = step("put", "put", f"/api/uploads/{uid}?offset=0", data=body,
                     headers={**headers, "Content-Type": "application/octet-stream"})
            assert r.status_code == 200, r.get_json()
            if shown["on"]:
                print("-- finalize")
            r = step("finalize", "post", f"/api/uploads/{uid}/finalize", headers=headers)
            assert r.status_code == 201, r.get_json()
        for name in times:
            t = times[name][3:]
            if not t:
                continue
            print(f"{name:9s} median {statistics.median(t) * 1000:7.1f} ms  p90 "
                  f"{sorted(t)[int(len(t) * 0.9)] * 1000:7.1f} ms  SQL statements median "
                  f"{statistics.median(stmts[name][3:])}  CPU median {statistics.median(cpu[name][3:]) * 1000:6.1f} ms")
        if profiler:
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
    pg.drop(args.database)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
