"""Scoring rooms, part 1: R tenders in evaluation, each room with 9 signed-in experts and 2 supervisors.

Seeding is the quickest consistent path, in this process, on the benchmark's database (schema from the
models, as the test suite builds it):

* through ebid's identity services: a tenderer with its staff, B bidder organisations (one platform
  certificate each, which their bid rows name), R x E expert persons and R x S supervisors (role
  ``supervisor``), each with an API token;
* as plain rows, consistent with each other (benchmark only, no sealing, no opening ceremony): per room a
  tender at ``evaluation`` with one lot, B current bids and their decrypted ``BidOpening`` rows (an
  opening form with price, duration, quality and project manager), a draw request for E experts, one
  draw round and E committee members ``signed_in``;
* the evaluation itself through the room services (``evaluation.room.start_evaluation`` by the tenderer's
  staff, then ``room_flow.members_changed``), so that its criteria and status are the services' own.

Emitters, one progress event per room per tick, stamping ``bench_seq`` and ``bench_sent`` (``time.time()``):

* ebid: the room's progress payload as ``evaluation.room`` builds it, queued with ``core.realtime.publish``
  inside a transaction and sent on commit through ebid's Redis message queue;
* baseline: a write-only Flask-SocketIO emitter on the baseline's Redis channel, same payload.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from hall_setup import baseline_channel  # noqa: E402
from opening_setup import create_schema  # noqa: E402
from surge_setup import CA_PASSPHRASE, make_app  # noqa: E402

SPECIALTY = "A010101"


def _parties(admin, app, n_rooms: int, experts: int, supervisors: int, bidders: int) -> dict:
    """Tenderer, bidder organisations with certificates, experts and supervisors with tokens."""
    from core.db import db
    from core.identity import services as identity
    from core.identity.ca import init_ca, issue_certificate
    from core.identity.models import OrganisationKind
    from core.identity.tokens import issue_api_token
    from core.identity.uscc import make as make_uscc
    from crypto import keys
    from evaluation.pool_models import Expert

    ca = init_ca(admin, app.extensions["ebid.settings"].keys_dir, CA_PASSPHRASE, kdf_log2_n=14)
    tenderer = identity.register_organisation(admin, make_uscc("91370200MB0000000"), "Rooms Tenderer Co.",
                                              OrganisationKind.TENDERER, region="370200")
    staff = identity.create_person(admin, "tenderer@rooms.test", "Tenderer Staff")
    identity.grant_role(admin, staff, "tenderer", tenderer)
    orgs = []
    for i in range(bidders):
        org = identity.register_organisation(admin, make_uscc(f"91370200MC{i:07d}"), f"Rooms Bidder {i:02d}",
                                             OrganisationKind.COMPANY, region="370200")
        cert = issue_certificate(admin, keys.make_csr(keys.generate_private_key(), org.name, uscc=org.uscc,
                                                      organisation_name=org.name), organisation=org, ca=ca)
        person = identity.create_person(admin, f"bidder{i}@rooms.test", f"Bidder {i:02d}")
        identity.grant_role(admin, person, "bidder", org)
        orgs.append({"id": org.id, "certificate_id": cert.id, "person_id": person.id})
    db.session.commit()
    expert_rows, supervisor_rows = [], []
    for i in range(n_rooms * experts):
        person = identity.create_person(admin, f"expert{i}@rooms.test", f"Expert {i:04d}")
        identity.grant_role(admin, person, "expert")
        expert = Expert(code=f"E{i:06d}", person_id=person.id, name=person.name, specialties=[SPECIALTY],
                        region="370100", employer_name=f"Institute {i % 17}")
        db.session.add(expert)
        db.session.flush()
        _row, token = issue_api_token(admin, person, "scoring room benchmark")
        expert_rows.append({"expert_id": expert.id, "person_id": person.id, "token": token})
        if i % 50 == 49:
            db.session.commit()
    for i in range(n_rooms * supervisors):
        person = identity.create_person(admin, f"supervisor{i}@rooms.test", f"Supervisor {i:03d}")
        identity.grant_role(admin, person, "supervisor")
        _row, token = issue_api_token(admin, person, "scoring room benchmark")
        supervisor_rows.append({"person_id": person.id, "token": token})
    db.session.commit()
    return {"tenderer_id": tenderer.id, "staff_id": staff.id, "orgs": orgs, "experts": expert_rows,
            "supervisors": supervisor_rows}


def _tender_rows(number: int, parties: dict, experts: list[dict]) -> int:
    """One tender in evaluation with its lot, decrypted bids, draw request, round and signed-in committee."""
    from bidding.models import Lot, Tender, TenderStatus
    from bidding.opening_models import (
        BidOpening,
        BidOpeningStatus,
        DecryptMethod,
        OpeningPhase,
        OpeningSession,
    )
    from bidding.record_models import OpeningRecord, RecordStatus
    from bidding.sealed_models import Bid
    from core.clock import now
    from core.db import db
    from evaluation.pool_models import CommitteeMember, DrawRequest, DrawRound, DrawStatus, MemberStatus

    at = now()
    deadline = at - timedelta(hours=2)
    tender = Tender(code=f"BENCH-ROOM-{number:03d}", title=f"Scoring room benchmark works {number}", regime="works",
                    category="works", region="370200", status=TenderStatus.EVALUATION,
                    tenderer_id=parties["tenderer_id"], created_by_id=parties["staff_id"],
                    estimated_price=Decimal("1000000.00"), ceiling_price=Decimal("980000.00"),
                    documents_from_at=at - timedelta(days=30), documents_until_at=at - timedelta(days=20),
                    question_deadline_at=at - timedelta(days=15), bid_deadline_at=deadline,
                    evaluation_method={"method": "comprehensive", "weights": {"price": 40, "technical": 50,
                                                                              "commercial": 10}},
                    published_at=at - timedelta(days=30))
    db.session.add(tender)
    db.session.flush()
    lot = Lot(tender_id=tender.id, number=1, code=f"{tender.code}-01", title="Lot 1",
              estimated_price=Decimal("1000000.00"), ceiling_price=Decimal("980000.00"), bond_amount=Decimal("0.00"))
    db.session.add(lot)
    db.session.add(OpeningSession(tender_id=tender.id, phase=OpeningPhase.DECRYPTED,
                                  decryption_started_at=deadline, decrypted_at=deadline + timedelta(minutes=20),
                                  closed_at=deadline + timedelta(minutes=40), started_by_id=parties["staff_id"]))
    db.session.flush()
    for i, org in enumerate(parties["orgs"]):
        digest = hashlib.sha256(f"{tender.code}/{i}".encode()).hexdigest()
        bid = Bid(public_id=secrets.token_hex(16), tender_id=tender.id, lot_id=lot.id, organisation_id=org["id"],
                  submitted_by_id=org["person_id"], signer_certificate_id=org["certificate_id"], version=1,
                  envelope_sha256=digest, envelope_size=4096, received_at=deadline - timedelta(days=1, minutes=i),
                  log_index=i, head_size=i + 1, receipt="{}")
        db.session.add(bid)
        db.session.flush()
        db.session.add(BidOpening(
            tender_id=tender.id, bid_id=bid.id, lot_id=lot.id, organisation_id=org["id"],
            status=BidOpeningStatus.DECRYPTED, method=DecryptMethod.BIDDER, key_sent_by_id=org["person_id"],
            plaintext_sha256=digest, plaintext_size=2048, decrypted_at=deadline + timedelta(minutes=5 + i),
            form={"type": "ebid-bid", "lot": lot.code, "price": f"{900000 + 1700 * i}.00", "currency": "CNY",
                  "duration_days": 365, "quality": "合格",
                  "project_manager": {"name": "张伟", "certificate_no": f"鲁137{number:03d}{i:04d}"},
                  "alternatives": False}))
    rows = [{"bidder": f"Rooms Bidder {i:02d}", "price": f"{900000 + 1700 * i}.00"} for i in range(len(parties["orgs"]))]
    db.session.add(OpeningRecord(tender_id=tender.id, status=RecordStatus.PUBLISHED, rows=rows,
                                 sha256=hashlib.sha256(repr(rows).encode()).hexdigest(),
                                 built_by_id=parties["staff_id"], built_at=deadline + timedelta(minutes=45),
                                 window_ends_at=deadline + timedelta(minutes=75),
                                 window_closed_at=deadline + timedelta(minutes=75),
                                 published_at=deadline + timedelta(minutes=90)))
    request = DrawRequest(tender_id=tender.id, status=DrawStatus.COMPLETE,
                          specialties=[{"code": SPECIALTY, "count": len(experts)}], committee_size=len(experts),
                          tenderer_representatives=0, alternates=0, is_remote=True, host_region="370200",
                          venues=["主场"], requested_by_id=parties["staff_id"], requested_at=at - timedelta(days=3))
    db.session.add(request)
    db.session.flush()
    codes = sorted(f"E{e['expert_id']:06d}" for e in experts)
    draw = DrawRound(request_id=request.id, number=1, purpose="initial",
                     wanted={SPECIALTY: {"count": len(experts), "alternates": 0}},
                     candidates={"specialties": {SPECIALTY: codes}},
                     candidates_sha256=hashlib.sha256(",".join(codes).encode()).hexdigest(),
                     seed_commitment=hashlib.sha256(b"bench").hexdigest(), seed=b"bench".hex(),
                     result={SPECIALTY: {"members": codes, "alternates": []}}, drawn_at=at - timedelta(days=3),
                     drawn_by_id=parties["staff_id"])
    db.session.add(draw)
    db.session.flush()
    for position, e in enumerate(experts):
        db.session.add(CommitteeMember(
            request_id=request.id, tender_id=tender.id, expert_id=e["expert_id"], round_id=draw.id,
            specialty=SPECIALTY, position=position, status=MemberStatus.SIGNED_IN,
            invited_at=at - timedelta(days=3), answered_at=at - timedelta(days=2), signed_in_at=at,
            declaration="本人与投标人无利害关系 (benchmark)", venue="主场"))
    db.session.flush()
    return tender.id


def _start(admin, tender_id: int, staff_actor) -> dict:
    """Open the room through the services; return the evaluation id and what each client needs."""
    from sqlalchemy import select

    from bidding.opening_models import BidOpening
    from core.db import db
    from evaluation import room, room_flow
    from evaluation.pool_models import CommitteeMember
    from evaluation.room_models import EvaluationStatus

    evaluation = room.start_evaluation(staff_actor, tender_id)
    db.session.flush()
    room_flow.members_changed(evaluation.id)
    if evaluation.status != EvaluationStatus.SCORING:
        raise RuntimeError(f"room of tender {tender_id} is {evaluation.status}, not scoring, after sign-in")
    members = list(db.session.scalars(select(CommitteeMember).where(CommitteeMember.tender_id == tender_id)
                                      .order_by(CommitteeMember.position)))
    bids = list(db.session.scalars(select(BidOpening.id).where(BidOpening.tender_id == tender_id)
                                   .order_by(BidOpening.id)))
    criteria = [{"code": c["code"], "kind": c["kind"], "min": c.get("min"), "max": c.get("max")}
                for c in evaluation.criteria if c.get("kind") in ("pass_fail", "score")]
    return {"evaluation_id": evaluation.id, "tender_id": tender_id, "bids": bids, "criteria": criteria,
            "members": [{"member_id": m.id, "expert_id": m.expert_id} for m in members]}


def seed_rooms(env: dict[str, str], n_rooms: int, experts: int = 9, supervisors: int = 2, bidders: int = 3) -> dict:
    """Seed ``n_rooms`` scoring rooms; return the client plan (one entry per client) and the rooms."""
    from bidding.receipts import log_key, receipt_key
    from core.actor import Actor
    from core.db import db
    from core.identity.access import actor_for
    from core.identity.models import Person

    timings = {}
    t = time.perf_counter()
    create_schema(env)
    admin = Actor.system(source="bench")
    app = make_app(env)
    with app.app_context():
        receipt_key(), log_key()  # made once here, not raced for by the server processes
        parties = _parties(admin, app, n_rooms, experts, supervisors, bidders)
        timings["parties_s"] = time.perf_counter() - t
        t = time.perf_counter()
        staff = actor_for(db.session.get(Person, parties["staff_id"]), "tenderer", parties["tenderer_id"],
                          source="bench")
        rooms, plan = [], []
        for r in range(n_rooms):
            seats = parties["experts"][r * experts:(r + 1) * experts]
            tender_id = _tender_rows(r, parties, seats)
            info = _start(admin, tender_id, staff)
            db.session.commit()
            rooms.append(info)
            by_expert = {e["expert_id"]: e for e in seats}
            common = {"evaluation_id": info["evaluation_id"], "room": r, "bids": info["bids"],
                      "criteria": info["criteria"]}
            for m in info["members"]:
                e = by_expert[m["expert_id"]]
                plan.append({**common, "role": "member", "member_id": m["member_id"], "person_id": e["person_id"],
                             "token": e["token"]})
            for s in parties["supervisors"][r * supervisors:(r + 1) * supervisors]:
                plan.append({**common, "role": "supervisor", "member_id": None, "person_id": s["person_id"],
                             "token": s["token"]})
        timings["rooms_s"] = time.perf_counter() - t
        db.session.remove()
    return {"rooms": rooms, "plan": plan, "timings": timings, "clients_per_room": experts + supervisors}


def progress_payload(room_info: dict) -> dict:
    """The ``room.progress`` payload of one member's half-filled draft, built by the room's own functions."""
    from core.clock import now
    from core.db import db
    from evaluation.room_models import Evaluation, ScoreSheet
    from evaluation.room_state import progress_view

    evaluation = db.session.get(Evaluation, room_info["evaluation_id"])
    codes = [c["code"] for c in evaluation.criteria]
    sheet = ScoreSheet(evaluation_id=evaluation.id, member_id=room_info["members"][0]["member_id"],
                       bid_opening_id=room_info["bids"][0], values=dict.fromkeys(codes[:len(codes) // 2], "pass"),
                       comments={}, revision=3, updated_at=now())
    payload = {"evaluation_id": evaluation.id, **progress_view(sheet, evaluation.criteria),
               "at": sheet.updated_at.isoformat()}
    db.session.expunge_all()
    return payload


def synthetic_rooms(n_rooms: int, experts: int = 9, supervisors: int = 2, bids: int = 3) -> dict:
    """Rooms for a run against the baseline alone (no database): ids, a client plan, the contract's payload.

    The baseline checks nothing, so tokens are placeholders; the payload has the fields of ``room.progress``
    (member, bid, filled, total, submitted, at) with the default method's 11 criteria.
    """
    rooms, plan, payloads = [], [], {}
    for r in range(n_rooms):
        evaluation_id, first = r + 1, 1 + r * experts
        info = {"evaluation_id": evaluation_id, "tender_id": evaluation_id,
                "bids": [1 + r * bids + b for b in range(bids)], "criteria": [],
                "members": [{"member_id": first + m, "expert_id": first + m} for m in range(experts)]}
        rooms.append(info)
        payloads[evaluation_id] = {"member_id": first, "bid_opening_id": info["bids"][0], "filled": 5, "total": 11,
                                   "submitted": False, "at": "2026-11-27T05:00:00.000000+00:00"}
        common = {"evaluation_id": evaluation_id, "room": r, "bids": info["bids"], "criteria": []}
        plan += [{**common, "role": "member", "member_id": m["member_id"], "person_id": m["member_id"],
                  "token": "ebid_placeholder"} for m in info["members"]]
        plan += [{**common, "role": "supervisor", "member_id": None, "person_id": 0, "token": "ebid_placeholder"}
                 for _ in range(supervisors)]
    return {"rooms": rooms, "plan": plan, "payloads": payloads, "timings": {},
            "clients_per_room": experts + supervisors}


class EbidEmitter:
    """Progress events through ebid's own path: ``core.realtime.publish`` in a transaction, sent on commit."""

    def __init__(self, database_url: str, data_dir: Path, redis_url: str, rooms: list[dict],
                 path: str = "publish") -> None:
        from core.config import Settings
        from ebid.app import create_app
        self.app = create_app(Settings.from_env(data_dir=data_dir, database_url=database_url, redis_url=redis_url))
        self.path, self.redis_url = path, redis_url
        if not self.app.extensions["ebid.realtime"]["message_queue"]:
            raise RuntimeError("ebid's emitter app has no Redis message queue")
        with self.app.app_context():
            self.payloads = {r["evaluation_id"]: progress_payload(r) for r in rooms}

    def send(self, evaluation_id: int, seq: int) -> None:
        """``room_flow.emit`` (the room services' publishing call: ``core.realtime.publish``), then commit;
        or, with ``path="external"``, ``core.realtime.external_emitter`` (no app context, no transaction)."""
        from core.db import db
        from evaluation.room_events import PROGRESS
        from evaluation.room_flow import emit
        payload = dict(self.payloads[evaluation_id])
        if self.path == "external":  # core.realtime's write-only emitter on ebid's channel (as scripts send)
            from core.realtime import external_emitter
            from evaluation.room_events import NAMESPACE, room_name
            external_emitter(self.redis_url).emit(PROGRESS, {**payload, "bench_seq": seq, "bench_sent": time.time()},
                                                  to=room_name(evaluation_id), namespace=NAMESPACE)
            return
        room = _RoomRef(payload.pop("evaluation_id"))
        with self.app.app_context():
            emit(room, PROGRESS, {**payload, "bench_seq": seq, "bench_sent": time.time()})
            db.session.commit()


class _RoomRef:
    """What ``room_flow.emit`` reads of an evaluation: its id (no row loaded per event)."""

    def __init__(self, evaluation_id: int) -> None:
        self.id = evaluation_id


class BaselineEmitter:
    """Progress events from a write-only Flask-SocketIO emitter on the baseline's Redis channel."""

    def __init__(self, redis_url: str, payloads: dict[int, dict]) -> None:
        from flask_socketio import SocketIO
        self.sio = SocketIO(message_queue=redis_url, channel=baseline_channel(redis_url), async_mode="threading")
        self.payloads = payloads

    def send(self, evaluation_id: int, seq: int) -> None:
        self.sio.emit("room.progress", {**self.payloads[evaluation_id], "bench_seq": seq, "bench_sent": time.time()},
                      to=f"evaluation:{evaluation_id}", namespace="/room")


def profile_saves(env: dict[str, str], plan: list[dict], saves: int, top: int = 30) -> dict:
    """The save handler in-process, one expert at a time through the /room namespace (Flask-SocketIO test
    client: the real ``action`` handler, no websocket): CPU and wall time per save (first half, not
    profiled), SQL statements per save, and a cProfile of the second half."""
    import cProfile
    import io
    import pstats

    from sqlalchemy import event

    from core.db import db
    from core.realtime import socketio

    app = make_app(env)
    members = [p for p in plan if p["role"] == "member"][:9]
    statements = [0]

    last: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements[0] += 1
        text = " ".join(statement.split())
        last.append(text if len(text) < 200 else f"{text[:60]} ... {text[-130:]}")
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
    clients = []
    for p in members:
        c = socketio.test_client(app, namespace="/room", auth={"token": p["token"]})
        answer = c.emit("join", {"evaluation_id": p["evaluation_id"]}, namespace="/room", callback=True)
        if not answer.get("ok"):
            raise RuntimeError(f"join refused in the profile: {answer}")
        clients.append((c, p))
    profiler, cpu, wall, refused, cursors = cProfile.Profile(), [], [], 0, [0] * len(clients)
    statements[0] = 0
    for i in range(saves):
        k = i % len(clients)
        c, p = clients[k]
        criterion = p["criteria"][cursors[k] % len(p["criteria"])]
        bid = p["bids"][(cursors[k] // len(p["criteria"])) % len(p["bids"])]
        cursors[k] += 1
        value = "pass" if criterion["kind"] == "pass_fail" else criterion["max"]
        args = {"evaluation_id": p["evaluation_id"], "name": "save_sheet", "bid_opening_id": bid,
                "values": {criterion["code"]: value}}
        last.clear()
        profiled = i >= saves // 2  # the first half times the handler alone, the second half profiles it
        t, started = time.process_time(), time.perf_counter()
        if profiled:
            profiler.enable()
        answer = c.emit("action", args, namespace="/room", callback=True)
        if profiled:
            profiler.disable()
        else:
            cpu.append(time.process_time() - t)
            wall.append(time.perf_counter() - started)
        refused += not answer.get("ok")
        c.get_received("/room")
    for c, _p in clients:
        c.disconnect(namespace="/room")
    with app.app_context():
        event.remove(db.engine, "before_cursor_execute", count)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"/(core|evaluation|bidding)/", top)
    stats.sort_stats("tottime").print_stats(top)
    cpu.sort()
    wall.sort()
    return {"saves": saves, "refused": refused, "cpu_ms_median": 1000 * cpu[len(cpu) // 2],
            "wall_ms_median": 1000 * wall[len(wall) // 2], "statements_per_save": statements[0] / saves,
            "last_save_sql": list(last), "profile": out.getvalue()}
