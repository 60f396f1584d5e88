"""Open data: OCDS 1.1 release packages of published tenders, validated offline against the vendored schema."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import bidding
from bidding.models import Tender, TenderStatus
from bidding.ocds import (
    LOTS_EXTENSION,
    TENDER_STATUS,
    NotExportable,
    build_release,
    build_release_package,
    money,
)
from bidding.ocds_validation import validate_package
from core.clock import clock
from core.db import db
from core.identity.access import actor_for
from core.identity.models import OrganisationKind

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)  # publication, Monday 09:00 Beijing time
BASE = "https://ggzy.example.cn"
PREFIX = "ocds-ebid00"
S = TenderStatus
LATER_STEPS = {S.OPENING: [S.OPENING], S.EVALUATION: [S.OPENING, S.EVALUATION],
               S.PUBLICITY: [S.OPENING, S.EVALUATION, S.PUBLICITY],
               S.AWARDED: [S.OPENING, S.EVALUATION, S.PUBLICITY, S.AWARDED], S.FAILED: [S.FAILED]}


def _actor(tender: Tender):
    return actor_for(tender.created_by, "tenderer", tender.tenderer_id)


def _file(tender: Tender, name: str, kind: str):
    return bidding.add_document(_actor(tender), tender, stream=io.BytesIO(name.encode()), filename=name,
                                content_type="application/pdf", kind=kind)


def amend(tender: Tender):
    """Three days later: postpone the bid deadline by 7 days, issue one file, withdraw another."""
    clock.travel(timedelta(days=3))
    issued = _file(tender, "澄清与修改第1号.pdf", "clarification")
    old = next(d for d in tender.documents if d.filename == "旧版工程量清单.pdf")
    amendment = bidding.amend_tender(_actor(tender), tender, summary="延长投标截止时间七天", affects_bids=True,
                                     changes={"bid_deadline_at": tender.bid_deadline_at + timedelta(days=7)},
                                     document_ids=[issued.id], withdraw_document_ids=[old.id])
    db.session.commit()
    db.session.expire_all()  # read back what is stored, as the next request would
    return amendment


@pytest.fixture
def build_tender(app, create_tender, create_org):
    """Return a function building a tender through the services: two lots, three files, published on T0."""
    tenderer = create_org(name="青岛市市政工程管理处", kind=OrganisationKind.TENDERER)
    agency = create_org(name="青岛招标代理有限公司", kind=OrganisationKind.AGENCY)

    def build(*, status=S.PUBLISHED, with_agency=True, amended=False) -> Tender:
        clock.freeze(T0)
        lots = [{"title": f"第{n}标段", "estimated_price": Decimal(price), "bond_amount": Decimal("20000.00")}
                for n, price in ((1, "6172839.45"), (2, "6172839.46"))]
        tender = create_tender(tenderer=tenderer, documents=0, title="海尔路道路改造工程施工",
                               description="道路、排水及照明改造。", estimated_price=Decimal("12345678.91"),
                               ceiling_price=Decimal("12000000.00"), lots=lots,
                               agency_id=agency.id if with_agency else None)
        for name, kind in (("招标公告.pdf", "tenderNotice"), ("招标文件.pdf", "bidding_documents"),
                           ("旧版工程量清单.pdf", "biddingDocuments")):
            _file(tender, name, kind)
        if status != S.DRAFT:
            bidding.publish_tender(_actor(tender), tender, expected_version=tender.version)
        db.session.commit()
        if amended:
            amend(tender)
        if status == S.CANCELLED:
            clock.travel(timedelta(days=1))
            bidding.cancel_tender(_actor(tender), tender, "项目资金未落实")
        for step in LATER_STEPS.get(status, []):
            bidding.transition(tender, step)  # no services for these stages yet: the state machine itself
        if status == S.PUBLISHED:
            _file(tender, "尚未发布的补遗.pdf", "biddingDocuments")  # staged until an amendment issues it
        db.session.commit()
        db.session.expire_all()
        return tender

    return build


def _package(*tenders: Tender, prefix: str = PREFIX) -> dict:
    return build_release_package(tenders, ocid_prefix=prefix, base_url=BASE, publisher_name="青岛市公共资源交易中心")


def test_published_tender_with_lots_documents_and_amendment_is_valid_ocds(build_tender):
    tender = build_tender(amended=True)
    package = _package(tender)

    assert validate_package(package) == []
    assert package["version"] == "1.1" and package["extensions"] == [LOTS_EXTENSION]
    assert package["publisher"]["name"] == "青岛市公共资源交易中心"
    release = package["releases"][0]
    assert release["ocid"] == f"{PREFIX}-{tender.code}"
    assert release["tag"] == ["tenderAmendment"]
    assert release["initiationType"] == "tender" and release["language"] == "zh"
    section = release["tender"]
    assert section["status"] == "active" and section["procurementMethod"] == "open"
    assert section["mainProcurementCategory"] == "works"
    assert section["tenderPeriod"] == {"startDate": "2025-03-03T01:00:00Z", "endDate": "2025-04-04T01:00:00Z"}
    assert section["enquiryPeriod"]["endDate"] == "2025-03-18T01:00:00Z"
    assert "awardPeriod" not in section and "numberOfTenderers" not in section

    assert [lot["id"] for lot in section["lots"]] == ["1", "2"]
    assert [lot["value"]["amount"] for lot in section["lots"]] == [6172839.45, 6172839.46]
    assert [(item["relatedLot"], item["description"]) for item in section["items"]] == [("1", "第1标段"),
                                                                                       ("2", "第2标段")]
    amendment = section["amendments"][0]
    assert amendment["date"] == "2025-03-06T01:00:00Z" and amendment["rationale"] == "延长投标截止时间七天"
    assert "2025-03-28T01:00:00Z → 2025-04-04T01:00:00Z" in amendment["description"]


def test_documents_are_the_issued_ones_with_type_url_and_hash(build_tender):
    tender = build_tender(amended=True)
    documents = _package(tender)["releases"][0]["tender"]["documents"]

    by_title = {d["title"]: d for d in documents}
    assert set(by_title) == {"招标公告.pdf", "招标文件.pdf", "澄清与修改第1号.pdf"}  # no withdrawn, no staged file
    notice = by_title["招标公告.pdf"]
    doc = next(d for d in tender.documents if d.filename == "招标公告.pdf")
    assert notice["documentType"] == "tenderNotice"
    assert notice["url"] == f"{BASE}/tenders/{tender.id}/documents/{doc.id}"
    assert notice["description"].startswith(f"SHA-256: {doc.sha256}")
    assert notice["format"] == "application/pdf" and notice["datePublished"] == "2025-03-03T01:00:00Z"
    assert by_title["招标文件.pdf"]["documentType"] == "biddingDocuments"
    assert by_title["澄清与修改第1号.pdf"]["documentType"] == "clarifications"


def test_parties_use_the_uscc_under_the_org_id_scheme(build_tender):
    with_agency = _package(build_tender())["releases"][0]
    tenderer, agency = with_agency["parties"]
    assert tenderer["identifier"]["scheme"] == "CN-USCI" and len(tenderer["identifier"]["id"]) == 18
    assert tenderer["id"] == f"CN-USCI-{tenderer['identifier']['id']}" and tenderer["roles"] == ["buyer"]
    assert agency["roles"] == ["procuringEntity"]
    assert with_agency["buyer"] == {"id": tenderer["id"], "name": "青岛市市政工程管理处"}
    assert with_agency["tender"]["procuringEntity"]["id"] == agency["id"]

    alone = _package(build_tender(with_agency=False))
    assert validate_package(alone) == []
    (party,) = alone["releases"][0]["parties"]
    assert party["roles"] == ["buyer", "procuringEntity"]


def test_cancelled_tender_is_valid_with_cancellation_tag_and_status(build_tender):
    tender = build_tender(status=TenderStatus.CANCELLED)
    package = _package(tender)

    assert validate_package(package) == []
    release = package["releases"][0]
    assert release["tag"] == ["tenderCancellation"]
    assert release["tender"]["status"] == "cancelled"
    assert {lot["status"] for lot in release["tender"]["lots"]} == {"cancelled"}


@pytest.mark.parametrize(("status", "ocds_status", "tag"), [
    (TenderStatus.PUBLISHED, "active", ["tender"]),
    (TenderStatus.OPENING, "active", ["tenderUpdate"]),
    (TenderStatus.EVALUATION, "active", ["tenderUpdate"]),
    (TenderStatus.PUBLICITY, "active", ["tenderUpdate"]),
    (TenderStatus.AWARDED, "complete", ["tenderUpdate"]),
    (TenderStatus.FAILED, "unsuccessful", ["tenderUpdate"]),
    (TenderStatus.CANCELLED, "cancelled", ["tenderCancellation"]),
])
def test_every_public_status_maps_to_the_closed_codelist(build_tender, status, ocds_status, tag):
    package = _package(build_tender(status=status))
    assert validate_package(package) == []
    assert package["releases"][0]["tender"]["status"] == ocds_status
    assert package["releases"][0]["tag"] == tag


def test_every_status_but_draft_is_mapped():
    assert set(TENDER_STATUS) == set(TenderStatus) - {TenderStatus.DRAFT}


def test_drafts_are_never_exported(build_tender):
    draft = build_tender(status=TenderStatus.DRAFT)
    with pytest.raises(NotExportable):
        build_release(draft, ocid_prefix=PREFIX, base_url=BASE)
    with pytest.raises(NotExportable):
        _package()


def test_release_id_changes_when_the_tender_changes_and_only_then(build_tender):
    tender = build_tender()
    first = build_release(tender, ocid_prefix=PREFIX, base_url=BASE)
    assert build_release(tender, ocid_prefix=PREFIX, base_url=BASE)["id"] == first["id"]

    amend(tender)
    amended = build_release(tender, ocid_prefix=PREFIX, base_url=BASE)
    assert amended["id"] != first["id"] and amended["id"].startswith(f"{PREFIX}-{tender.code}-")
    assert amended["tag"] == ["tenderAmendment"]


def test_money_is_exact_in_the_json_text():
    assert money(Decimal("1500000.00")) == 1500000 and isinstance(money(Decimal("1500000.00")), int)
    assert json.dumps(money(Decimal("12345678.91"))) == "12345678.91"
    assert json.dumps(money(Decimal("0.10"))) == "0.1"
    assert json.dumps(money(Decimal("9999999999999.99"))) == "9999999999999.99"
    assert money(Decimal("12345678901234567")) == 12345678901234567
    with pytest.raises(ValueError):
        money(Decimal("1234567890123456.78"))  # 18 significant digits cannot ride on a float


def test_amount_appears_verbatim_in_the_published_json(build_tender, client):
    tender = build_tender()
    text = client.get(f"/api/ocds/tenders/{tender.id}").get_data(as_text=True)
    assert '"amount": 12345678.91' in text


def test_a_broken_package_is_reported_invalid(build_tender):
    package = copy.deepcopy(_package(build_tender(amended=True)))
    release = package["releases"][0]
    del release["initiationType"]
    release["tender"]["status"] = "open"
    release["tender"]["value"]["amount"] = "12345678.91"
    release["tender"]["documents"][0]["documentType"] = "tenderDocs"
    release["tender"]["items"][0]["relatedLot"] = "9"
    release["tender"]["lots"][0]["value"]["currency"] = "RMB"
    release["buyer"]["id"] = "CN-USCI-000000000000000000"
    release["date"] = "2025-03-07 09:00"
    package["publishedDate"] = "yesterday"

    errors = validate_package(package)

    def reported(*words: str) -> bool:
        return any(all(w in e for w in words) for e in errors)

    assert reported("$.releases[0]", "'initiationType' is a required property")
    assert reported("$.releases[0].tender.status", "'open'")
    assert reported("$.releases[0].tender.value.amount", "is not of type")
    assert reported("$.releases[0].tender.documents[0].documentType", "documentType codelist")
    assert reported("$.releases[0].tender.items[0].relatedLot", "'9'")
    assert reported("$.releases[0].tender.lots[0].value.currency", "'RMB'")
    assert reported("$.releases[0].buyer", "'buyer'")
    assert reported("$.releases[0].date", "date-time")
    assert reported("$.publishedDate", "date-time")
    assert validate_package({"releases": []})  # no uri, no publisher, no release at all


def test_api_serves_one_published_tender_and_refuses_drafts(build_tender, client):
    tender = build_tender()
    draft = build_tender(status=TenderStatus.DRAFT)

    response = client.get(f"/api/ocds/tenders/{tender.id}")
    assert response.status_code == 200 and response.mimetype == "application/json"
    package = response.get_json()
    assert validate_package(package) == []
    assert package["uri"] == f"http://127.0.0.1:5000/api/ocds/tenders/{tender.id}"
    assert [r["ocid"] for r in package["releases"]] == [f"{PREFIX}-{tender.code}"]
    assert client.get(f"/api/ocds/tenders/{tender.id}",
                      headers={"If-None-Match": response.headers["ETag"]}).status_code == 304

    for missing in (draft.id, 999999):
        refused = client.get(f"/api/ocds/tenders/{missing}")
        assert refused.status_code == 404
        body = refused.get_json()
        assert body["code"] == "tender_not_found" and body["message"] and body["fields"] == {}

    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"/api/ocds/tenders/{tender_id}", "/api/ocds/releases"} <= set(paths)


def test_ocid_prefix_and_publisher_come_from_settings(build_tender, client, settings):
    tender = build_tender()
    settings.ocid_prefix = "ocds-qdggzy"
    settings.publisher_name = "青岛市公共资源交易中心"

    package = client.get(f"/api/ocds/tenders/{tender.id}").get_json()
    assert package["releases"][0]["ocid"] == f"ocds-qdggzy-{tender.code}"
    assert package["releases"][0]["id"].startswith(f"ocds-qdggzy-{tender.code}-")
    assert package["publisher"]["name"] == "青岛市公共资源交易中心"
    assert validate_package(package) == []


def test_all_releases_leave_drafts_out(build_tender, client):
    published = [build_tender(), build_tender(status=TenderStatus.CANCELLED)]
    draft = build_tender(status=TenderStatus.DRAFT)

    package = client.get("/api/ocds/releases").get_json()
    assert validate_package(package) == []
    assert [r["tender"]["id"] for r in package["releases"]] == [t.code for t in published]
    assert draft.code not in json.dumps(package, ensure_ascii=False)


def test_cli_writes_the_same_valid_json_as_the_api(build_tender, client, app, tmp_path):
    tender = build_tender(amended=True)
    build_tender(status=TenderStatus.FAILED)
    build_tender(status=TenderStatus.DRAFT)
    runner = app.test_cli_runner()

    out = tmp_path / "ocds.json"
    result = runner.invoke(args=["export", "ocds", "--validate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == client.get("/api/ocds/releases").get_data(as_text=True)
    assert len(json.loads(out.read_text(encoding="utf-8"))["releases"]) == 2

    one = runner.invoke(args=["export", "ocds", "--tender", str(tender.id)])
    assert one.exit_code == 0, one.output
    assert one.stdout == client.get(f"/api/ocds/tenders/{tender.id}").get_data(as_text=True)


def test_cli_refuses_drafts_and_invalid_packages(build_tender, app, settings, tmp_path):
    draft = build_tender(status=TenderStatus.DRAFT)
    runner = app.test_cli_runner()

    refused = runner.invoke(args=["export", "ocds", "--tender", str(draft.id)])
    assert refused.exit_code != 0 and "No published tender" in refused.output
    assert runner.invoke(args=["export", "ocds"]).exit_code != 0  # only a draft: nothing to publish

    build_tender()
    settings.ocid_prefix = "not a prefix"
    out = tmp_path / "ocds.json"
    invalid = runner.invoke(args=["export", "ocds", "--validate", "--out", str(out)])
    assert invalid.exit_code != 0
    assert "ocid" in invalid.output and "OCDS prefix" in invalid.output
    assert not out.exists()
