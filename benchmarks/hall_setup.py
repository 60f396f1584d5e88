"""Opening hall, part 1: one tender at its opening with N bidders in it, and the two emitters.

The tender is seeded through ebid's services as in ``opening_setup.py``: N bidder organisations, each
with a person, an API token and a small real bid (a bid ZIP sealed with its own key, uploaded and
finalized through the bids API), so that each of the N clients may enter the hall as a bidder. The
deadline is moved (benchmark only), the tender closes, the host starts decryption, and the first
bidder's bid is decrypted through the opening's real path, so that the board row the emitters send is
a decrypted one (with its opening form, as when a price is read out).

Emitters, one board update per tick, both stamping ``bench_seq`` and ``bench_sent`` (``time.time()``)
into the payload:

* ebid: ``bidding.hall_events.emit`` inside a transaction, sent on commit by ``core.realtime`` through
  ebid's Redis message queue, exactly as the opening services do;
* baseline: a write-only Flask-SocketIO emitter on the baseline's Redis channel, same payload.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import opening_setup as setup  # noqa: E402
from surge_setup import make_app  # noqa: E402


def baseline_channel(redis_url: str) -> str:
    """The baseline's pub/sub channel: apart from ebid's, and per Redis database like ebid's."""
    from core.realtime import channel_for
    return channel_for(redis_url) + "-bench-baseline"


def seed_hall(env: dict[str, str], n: int, tmp: Path) -> dict:
    """Seed the tender at its opening with ``n`` bidders; return tokens, tender id and the board row."""
    from bidding.opening import board_row
    from bidding.opening_models import BidOpening
    from bidding.opening_process import process_pending
    from core.db import db

    timings = {}
    t = time.perf_counter()
    setup.create_schema(env)
    parties = setup.seed(env, n, tmp / "keys")
    run = setup.publish(env, parties, f"BENCH-HALL-{n}")
    timings["seed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    zips = setup.build_zips(tmp / "zips", run.lot_code, n, 0.01)
    envelopes = setup.seal(run, parties, zips, tmp / "sealed")
    setup.upload_all(env, run, parties, envelopes)
    timings["bids_s"] = time.perf_counter() - t
    setup.open_hall(env, run, parties)
    first = {"bidders": parties["bidders"][:1]}
    keys = setup.content_keys(env, run, first)
    setup.submit_keys(env, run, first, keys)
    with make_app(env).app_context():
        process_pending(run.tender_id)
        row = board_row(db.session.get(BidOpening, keys[0]["opening_id"]))
        db.session.remove()
    if row["status"] != "decrypted" or not row["form"]:
        raise RuntimeError(f"the first bid did not decrypt: {row}")
    return {"tender_id": run.tender_id, "tokens": [b["token"] for b in parties["bidders"]], "row": row,
            "timings": timings}


class EbidEmitter:
    """Board updates through ebid's own path: hall_events.emit in a transaction, published on commit."""

    def __init__(self, database_url: str, data_dir: Path, redis_url: str, tender_id: int, row: dict) -> None:
        from core.config import Settings
        from ebid.app import create_app
        self.app = create_app(Settings.from_env(data_dir=data_dir, database_url=database_url, redis_url=redis_url))
        self.tender_id, self.row = tender_id, row
        if not self.app.extensions["ebid.realtime"]["message_queue"]:
            raise RuntimeError("ebid's emitter app has no Redis message queue")

    def send(self, seq: int) -> None:
        from bidding import hall_events
        from core.db import db
        with self.app.app_context():
            hall_events.emit(self.tender_id, "hall.board", {**self.row, "bench_seq": seq, "bench_sent": time.time()})
            db.session.commit()


class BaselineEmitter:
    """Board updates from a write-only Flask-SocketIO emitter through the baseline's Redis channel."""

    def __init__(self, redis_url: str, tender_id: int, row: dict) -> None:
        from flask_socketio import SocketIO
        self.sio = SocketIO(message_queue=redis_url, channel=baseline_channel(redis_url), async_mode="threading")
        self.tender_id, self.row = tender_id, row

    def send(self, seq: int) -> None:
        self.sio.emit("hall.board", {"tender_id": self.tender_id, **self.row, "bench_seq": seq,
                                     "bench_sent": time.time()}, to=f"hall:{self.tender_id}", namespace="/hall")
