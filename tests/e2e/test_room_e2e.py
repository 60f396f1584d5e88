"""Browser test of the scoring room (评标室): three experts and a supervisor in four Chromium profiles, and the
bidder's clarification page in a fifth.

Every page connects to the /room Socket.IO namespace with the project's own socket.io client, on a
1366x768 laptop screen, in Chinese. An expert types scores; the draft is saved 600 ms later and shows as
progress in the other experts' and the supervisor's pages, without the values; a reload resumes the
draft. Then an expert asks a bidder for a clarification: the bidder's page shows the question live, the
bidder answers, and the answer appears in every room page. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import re

import pytest

from core.db import db
from evaluation import room
from evaluation.room_models import Clarification, ClarificationStatus, ScoreSheet
from tests.e2e.test_publish_flow import (  # noqa: F401  (live_server and browser_context are fixtures)
    CHROMIUM,
    browser_context,
    live_server,
    shot,
)
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not "
                                                               "installed: apt-get install chromium")]

LAPTOP = {"width": 1366, "height": 768}


def _login(page, server: str, person) -> None:
    page.goto(f"{server}/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account"))


def _open(browser, server: str, name: str, person, path: str):
    page = browser(name).new_page()
    page.set_viewport_size(LAPTOP)
    _login(page, server, person)
    page.goto(f"{server}{path}")
    return page


@pytest.fixture
def server(request) -> str:
    """The app served from a thread on 127.0.0.1 with CSRF on (test_publish_flow's live_server)."""
    return request.getfixturevalue("live_server")


@pytest.fixture
def browser(request):
    """A function opening a fresh Chromium profile (test_publish_flow's browser_context)."""
    return request.getfixturevalue("browser_context")


@pytest.fixture
def r(make_room):
    """The room, built before the browser starts (signing the opening record runs its own event loop)."""
    return make_room(experts=3, bidders=4)  # 3 valid bids: completion needs no competition decision


def test_three_experts_and_a_supervisor_score_and_clarify_live(r, server, browser):
    criteria = r.evaluation.criteria
    score = next(c for c in criteria if c["kind"] == "score")
    first = next(c for c in criteria if c["kind"] == "pass_fail")
    bid = r.bid_ids[0]
    me = r.member_ids[0]
    room_path = f"/evaluations/{r.evaluation_id}/room"

    pages = {}
    for name, person in (("expert-1", r.experts[0]), ("expert-2", r.experts[1]), ("expert-3", r.experts[2]),
                         ("supervisor", r.supervisor)):
        page = _open(browser, server, f"room-{name}", person, room_path)
        page.wait_for_selector("#room-app[data-connected=yes][data-status=scoring]")
        pages[name] = page
    for page in pages.values():  # everyone sees the three members online and the two opened bids
        page.wait_for_function("document.querySelectorAll('[data-members] li[data-present=yes]').length === 3")
        assert page.locator("[data-bids] tr[data-status=decrypted]").count() == len(r.bid_ids)
        assert page.locator(f"[data-bids] tr[data-bid='{bid}'] [data-bid-file]").count() == 1
        assert page.locator(f"[data-progress-cell='{me}:{bid}']").get_attribute("data-filled") == "0"
    supervisor = pages["supervisor"]
    assert supervisor.locator("[data-read-only]").count() == 1
    assert supervisor.locator("[data-suspend-form]").is_visible() and supervisor.locator("[data-resume]").is_hidden()
    assert pages["expert-2"].locator("[data-summary-form]").is_hidden()  # no chair elected yet
    assert supervisor.locator("[data-sheet] input").count() == 0  # nothing to type in: read-only
    shot(pages["expert-1"], "room-01-expert-joined")

    # expert 1 scores: a pass and a score; the draft is saved 600 ms after typing
    expert = pages["expert-1"]
    expert.check(f"[data-sheet] [data-criterion='{first['code']}'] input[data-value=pass]")
    expert.fill(f"[data-sheet] input[data-score='{score['code']}']", score["max"])
    expert.wait_for_selector("[data-save-state][data-state=saved]")
    assert int(expert.locator("[data-save-state]").get_attribute("data-revision")) >= 1
    for name, page in pages.items():
        page.wait_for_selector(f"[data-progress-cell='{me}:{bid}'][data-filled='2']")
        assert page.locator(f"[data-progress-cell='{me}:{bid}']").get_attribute("data-submitted") == "no"
        if name in ("expert-2", "expert-3"):  # the others see the progress, never the values
            assert page.locator(f"[data-other-sheet='{me}']").count() == 0
            assert page.locator(f"[data-hidden-sheet='{me}']").count() == 1
    supervisor.locator(f"[data-bids] tr[data-bid='{bid}'] [data-open-sheet]").click()
    supervisor.wait_for_selector(f"[data-other-sheet='{me}'] [data-value='{score['code']}']")
    assert supervisor.locator(f"[data-other-sheet='{me}'] [data-value='{score['code']}']").inner_text() == score["max"]
    shot(pages["expert-2"], "room-02-progress-seen-by-another-expert")
    shot(supervisor, "room-03-supervisor-reads-the-draft")

    db.session.expire_all()
    sheet = db.session.query(ScoreSheet).filter_by(member_id=me, bid_opening_id=bid).one()
    assert sheet.values == {first["code"]: "pass", score["code"]: score["max"]}

    expert.reload()  # a reload resumes the draft
    expert.wait_for_selector("#room-app[data-connected=yes]")
    expert.wait_for_function(f"document.querySelector(\"[data-sheet] input[data-score='{score['code']}']\")"
                             f".value === '{score['max']}'")
    assert expert.locator(f"[data-sheet] [data-criterion='{first['code']}'] input[data-value=pass]").is_checked()

    # a clarification round trip: the bidder's page shows the question live and answers it
    bidder = r.bidder_of(bid)
    bidder_page = _open(browser, server, "bidder", bidder.person, f"/tenders/{r.tender_id}/clarifications")
    bidder_page.wait_for_selector("#clarifications-app[data-connected=yes]")
    assert bidder_page.locator("[data-clarification]").count() == 0
    question = "请说明项目经理目前是否有在建项目。"
    expert.select_option("[data-clarify-form] select[name=bid_opening_id]", str(bid))
    expert.fill("[data-clarify-form] textarea[name=question]", question)
    expert.click("[data-clarify-form] button[type=submit]")
    for page in pages.values():
        page.wait_for_selector("[data-clarifications] li[data-status=open]")
        assert question in page.locator("[data-clarifications]").inner_text()
    item = bidder_page.locator("[data-clarification][data-status=open]")
    item.wait_for()
    assert question in item.inner_text()
    shot(bidder_page, "room-04-bidder-sees-the-question")

    answer = "项目经理张工目前无在建项目，承诺专职负责本项目。"
    item.locator("textarea[name=answer]").fill(answer)
    item.locator("button[type=submit]").click()
    bidder_page.wait_for_selector("[data-clarification][data-status=answered] [data-answer]")
    for page in pages.values():
        answered = page.locator("[data-clarifications] li[data-status=answered] [data-answer]")
        answered.wait_for()
        assert answer in answered.inner_text()
    db.session.expire_all()
    row = db.session.query(Clarification).one()
    assert row.status == ClarificationStatus.ANSWERED and row.answer == answer
    shot(pages["expert-3"], "room-05-the-answer-arrives-in-the-room")

    # the chair: two of three votes elect expert 3, whose page then shows the summary form
    chair = r.member_ids[2]
    for name in ("expert-1", "expert-2"):
        pages[name].click(f"[data-members] [data-vote-chair='{chair}']")
    for page in pages.values():
        page.wait_for_selector(f"[data-members] li[data-member='{chair}'][data-chair=yes] [data-chair-badge]")
    pages["expert-3"].wait_for_selector("[data-summary-form]:not([hidden])")
    assert pages["expert-1"].locator("[data-summary-form]").is_hidden()

    # suspension: the supervisor suspends, every page shows the banner and the sheet is locked; then resumes
    supervisor.fill("[data-suspend-form] textarea[name=reason]", "副场视频中断")
    supervisor.click("[data-suspend-form] button[type=submit]")
    for page in pages.values():
        page.wait_for_selector("#room-app[data-status=suspended] [data-suspended]:not([hidden])")
        assert "副场视频中断" in page.locator("[data-suspended]").inner_text()
    expert.wait_for_selector(f"[data-sheet] input[data-score='{score['code']}'][disabled]")
    shot(expert, "room-06-suspended")
    supervisor.click("[data-resume]")
    for page in pages.values():
        page.wait_for_selector("#room-app[data-status=scoring] [data-suspended][hidden]", state="attached")
    expert.wait_for_selector(f"[data-sheet] input[data-score='{score['code']}']:not([disabled])")


def _fill_and_submit(page, criteria, bid: int, score: str) -> None:
    """Score one bid in the expert's page: every pass/fail item passes, every score ``score``; then submit."""
    page.click(f"[data-bids] tr[data-bid='{bid}'] [data-open-sheet]")
    page.wait_for_selector(f"[data-sheet-panel][data-bid='{bid}']")
    for c in criteria:
        if c["kind"] == "pass_fail":
            page.check(f"[data-sheet] [data-criterion='{c['code']}'] input[data-value=pass]")
        else:
            page.fill(f"[data-sheet] input[data-score='{c['code']}']", c["max"] if score == "max" else c["min"])
    page.click(f"[data-submit-sheet='{bid}']")
    page.wait_for_selector("[data-save-state][data-state=submitted]")


def test_the_chair_submits_disputes_summarises_and_completes(r, server, browser):
    criteria = r.evaluation.criteria
    chair, others = r.member_ids[0], r.member_ids[1:]
    low = {c["code"]: ("pass" if c["kind"] == "pass_fail" else c["min"]) for c in criteria}
    for i in (1, 2):  # the two other members vote expert 1 chair, then score low and submit (their own clients)
        room.vote_chair(r.member_actor(i), r.evaluation_id, chair)
        for bid in r.bid_ids:
            room.save_sheet(r.member_actor(i), r.evaluation_id, bid, low)
            room.submit_sheet(r.member_actor(i), r.evaluation_id, bid)
        db.session.commit()
    expert = _open(browser, server, "chair", r.experts[0], f"/evaluations/{r.evaluation_id}/room")
    supervisor = _open(browser, server, "supervisor", r.supervisor, f"/evaluations/{r.evaluation_id}/room")
    for page in (expert, supervisor):
        page.wait_for_selector("#room-app[data-connected=yes][data-status=scoring]")
        page.wait_for_selector(f"[data-members] li[data-member='{chair}'] [data-chair-badge]")
    assert expert.locator("[data-summary-form]").is_visible()

    _fill_and_submit(expert, criteria, r.bid_ids[0], "max")  # far above the others: a deviation warning
    expert.wait_for_selector(f"[data-warnings] li[data-warning='{chair}:{r.bid_ids[0]}']")
    for member in others:  # both submitted: the others' values now show in the chair's page
        expert.wait_for_selector(f"[data-other-sheet='{member}'][data-submitted=yes]")
    for bid in r.bid_ids[1:]:
        _fill_and_submit(expert, criteria, bid, "min")
    for page in (expert, supervisor):  # every sheet in: the room moves to the summary
        page.wait_for_selector("#room-app[data-status=summary]")
        page.wait_for_selector(f"[data-progress-cell='{chair}:{r.bid_ids[1]}'][data-submitted=yes]")
    shot(expert, "room-07-chair-all-submitted")

    expert.select_option("[data-dispute-form] select[name=bid_opening_id]", str(r.bid_ids[1]))
    expert.select_option("[data-dispute-form] select[name=criterion]", "R1")
    expert.fill("[data-dispute-form] textarea[name=reason]", "工期响应存疑")
    expert.click("[data-dispute-form] button[type=submit]")
    for page in (expert, supervisor):
        page.wait_for_selector("[data-disputes] li[data-status=voting]")
    assert supervisor.locator("[data-dispute-vote]").count() == 0  # read-only
    expert.click("[data-disputes] [data-dispute-vote=pass]")
    dispute_id = int(expert.locator("[data-disputes] li[data-dispute]").get_attribute("data-dispute"))
    for i in (1, 2):
        room.vote_dispute(r.member_actor(i), dispute_id, "pass")
        db.session.commit()
    for page in (expert, supervisor):
        page.wait_for_selector("[data-disputes] li[data-status=decided]")

    expert.fill("[data-summary-form] textarea[name=text]", "经评审，两家投标人均通过初步评审。")
    expert.click("[data-summary-form] button[type=submit]")
    supervisor.wait_for_function("document.querySelector('[data-summary]').textContent.includes('两家投标人')")
    expert.click("[data-complete]")
    for page in (expert, supervisor):
        page.wait_for_selector("#room-app[data-status=complete]")
    assert expert.locator("[data-summary-form]").is_hidden()
    shot(supervisor, "room-08-supervisor-complete")
