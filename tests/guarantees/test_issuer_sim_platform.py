"""End to end over real HTTP: the platform (served by werkzeug) and the reference issuer talk the protocol.

The bidder applies on the platform, the outbox posts ``OrderApply`` to the simulator, the simulator
underwrites, seals the letter and calls back; the platform stores the letter, verifies it (seal, hash,
the issuer's registry), releases it, and the simulator confirms the release.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from core.db import db
from core.identity.models import OrganisationKind
from guarantees import (
    OrderState,
    add_product,
    admit_issuer,
    apply_for_guarantee,
    outbox,
    release,
    verify_letter,
)
from guarantees import platform_id as platform_sender
from guarantees.issuer_sim import SimConfig, create_app
from guarantees.keys import platform_key
from guarantees.letters import letter_sha256
from guarantees.models import GuaranteeOrder
from tests.guarantees.conftest import ADMIN, staff
from tests.guarantees.sim_support import serve, stop, wait_for

pytestmark = pytest.mark.usefixtures("policy")


@pytest.fixture
def platform_url(app):
    url, server, thread = serve(app)
    yield url
    stop(server, thread)


@pytest.fixture
def simulator(app, tmp_path, platform_url):
    config = SimConfig(code="SIMBANK", name="模拟银行", data_dir=tmp_path / "simbank", platform_url=platform_url,
                       platform_id=platform_sender(), platform_public_key=platform_key().public_key(), locale="en",
                       retry_base=0.1, retry_max=0.5, poll_interval=0.05)
    sim_app = create_app(config)
    url, server, thread = serve(sim_app)
    yield url, sim_app.extensions["issuer_sim"]
    stop(server, thread)
    sim_app.extensions["issuer_sim"].close()


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _state(order_id: int) -> OrderState:
    db.session.rollback()  # end the read so the server threads can write (SQLite)
    state = db.session.get(GuaranteeOrder, order_id, populate_existing=True).state
    db.session.rollback()
    return state


def _pump(order_id: int, until: OrderState) -> None:
    """Deliver due outbox messages (Celery may be eager or not here) until the order reaches ``until``."""
    def reached():
        for message_id in outbox.due_ids():
            outbox.deliver(message_id)
        db.session.commit()
        return _state(order_id) == until
    wait_for(reached, timeout=30, what=f"order state {until.value}")


def test_apply_issue_verify_and_release_against_the_simulator(app, simulator, create_org, tender, bidder):
    sim_url, sim = simulator
    org = create_org(kind=OrganisationKind.ISSUER, name="模拟银行")
    keys = sim.keys
    issuer = admit_issuer(ADMIN, org, code="SIMBANK", kind="bank", api_base_url=sim_url,
                          message_cert_pem=_pem(keys.message_cert), letter_trust_root_pem=_pem(keys.ca_cert))
    product = add_product(ADMIN, issuer, code="SIM-BID", name="模拟投标保函", minimum_fee="300.00", rate_permille="0.8")
    db.session.commit()
    _, _, actor = bidder
    order = apply_for_guarantee(actor, tender, tender.lots[0], product, "plain")
    db.session.commit()
    order_id = order.id

    _pump(order_id, OrderState.ISSUED)
    order = db.session.get(GuaranteeOrder, order_id)
    assert order.guarantee_no.startswith("SIMBANK-") and len(order.verification_code) == 10
    assert order.letter_sha256 == sim.store.letter(order.guarantee_no)["sha256"]
    assert letter_sha256(sim.store.letter(order.guarantee_no)["pdf"]) == order.letter_sha256
    report = verify_letter(guarantee_no=order.guarantee_no, code=order.verification_code, confirm_with_issuer=True)
    assert report.ok, report.to_dict()
    assert {c.name for c in report.checks if c.passed} >= {"record", "signature", "registry"}

    release(staff(tender), order, "contract_signed")
    db.session.commit()
    _pump(order_id, OrderState.CLOSED)
    assert sim.store.letter(order.guarantee_no)["status"] == "released"
