"""The evaluation report PDF (评标报告) and the price-score explanation annex: content, font, fields, bytes."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields

from core.errors import ValidationFailed
from core.pdf import CJK_FONT_NAME
from evaluation.explain_pdf import build_explanation
from evaluation.report_pdf import NONE, SECTIONS, SUMMARY_HEADING, build_report, heading, signature_fields

needs_poppler = pytest.mark.skipif(not (shutil.which("pdftotext") and shutil.which("pdffonts")),
                                   reason="pdftotext and pdffonts (poppler-utils) are needed; "
                                          "apt-get install poppler-utils")


def report_dict(members: int = 3, bids: int = 3, items: int = 2) -> dict[str, Any]:
    """A small but complete report: one lot, ``bids`` bidders, one rejected, every list filled."""
    committee = [{"field": f"Member{i}", "name": f"委员{i:02d}", "role": "组长/Chair" if i == 1 else "成员/Member",
                  "specialty": "市政工程", "employer": f"某大学土木学院{i}"} for i in range(1, members + 1)]
    bidders = [f"山东测试第{b}建筑有限公司" for b in range(1, bids + 1)]
    prices = [f"{980000 + 1111 * b}.50" for b in range(1, bids + 1)]
    scores = [{"bidder": b, "price": p, "evaluated_price": p, "deviation": f"-{i}.10%", "price_score": f"5{i}.25",
               "subjective": "24.75", "total": f"8{i}.00", "rank": i + 1, "flags": ["异常低价/abnormally low"] if i == 1
               else []} for i, (b, p) in enumerate(zip(bidders, prices, strict=True))]
    return {
        "tender": {"code": "TEST-2026-042", "title": "测试道路改造工程", "tenderer": "测试市政局", "agency": "测试代理公司",
                   "regime": "工程建设/Works", "method": "综合评估法/Comprehensive", "method_version": 2,
                   "opening_at": "2026-11-20T01:30:00+00:00", "started_at": "2026-11-20T02:00:00+00:00",
                   "completed_at": "2026-11-20T07:45:00+00:00", "report_at": "2026-11-20T08:15:30+00:00"},
        "basics": [["最高投标限价 Ceiling price", "1200000.00"]],
        "members": committee,
        "opening": {"sha256": "c3" * 32, "published_at": "2026-11-20T01:50:00+00:00",
                    "rows": [{"lot": "01", "bidder": b, "price": p, "duration_days": 180, "quality": "合格",
                              "project_manager": "王工", "bond": "现金/Cash bond"} for b, p in zip(bidders, prices,
                                                                                              strict=True)]},
        "criteria": [{"code": f"T{k}", "group": "技术", "title": f"施工方案{k}", "kind": "score", "range": "0–10"}
                     for k in range(1, items + 1)],
        "method_lines": ["价格分满分 60 分 (price score out of 60)"],
        "lots": [{"code": "01", "title": "道路主体", "benchmark": "987654.32", "benchmark_lines": ["B = A × 0.97"],
                  "qualified": [{"bidder": b, "price": p} for b, p in zip(bidders, prices, strict=True)],
                  "rejected": [{"bidder": "否决测试有限公司", "reasons": ["未提交投标保证金"]}],
                  "scores": scores,
                  "item_scores": [{"bidder": b, "code": f"T{k}", "by_member": {m["field"]: f"{6 + k}.5"
                                                                              for m in committee},
                                   "average": f"{6 + k}.50", "dropped": [committee[0]["field"]]}
                                  for b in bidders for k in range(1, items + 1)],
                  "ranking": [{"rank": s["rank"], "bidder": s["bidder"], "total_or_price": s["total"]} for s in scores],
                  "candidates": [{"rank": 1, "bidder": bidders[0], "price": prices[0], "note": "第一中标候选人"}],
                  "matters": ["核实项目经理社保缴纳记录"]}],
        "clarifications": [{"bidder": bidders[0], "question": "请澄清工期安排", "answer": "工期 180 日历天不变",
                            "asked_at": "2026-11-20T03:00:00+00:00", "answered_at": "2026-11-20T03:20:00+00:00",
                            "status": "已答复/Answered"}],
        "disputes": [{"bidder": bidders[1], "criterion": "T1", "reason": "评分偏离较大", "outcome": "复核后维持",
                      "votes": [{"member": m["name"], "vote": "同意/Agree" if i else "反对/Disagree",
                                 "reason": "" if i else "方案深度不足，应降档"} for i, m in enumerate(committee)]}],
        "dissents": [{"member": committee[0]["name"], "text": "本人对T1评分持保留意见，理由见表决记录。"}],
        "summary": "评标委员会一致推荐第一中标候选人。",
    }


def _reader(pdf: bytes) -> PdfFileReader:
    return PdfFileReader(io.BytesIO(pdf))


def _pages_text(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return out.split("\f")[:-1]


def _embedded_font_files(pdf: bytes) -> list[str]:
    """Base names of fonts whose program is embedded (/FontFile2 in the descriptor), over all pages."""
    names = set()
    reader = _reader(pdf)
    for page_ref in reader.root["/Pages"]["/Kids"]:
        resources = page_ref.get_object()["/Resources"]
        if "/Font" not in resources:
            continue
        fonts = resources["/Font"]  # resolved, unlike .get()
        for key in fonts:
            font = fonts[key]
            descriptor = font.get("/FontDescriptor")
            if descriptor is not None and "/FontFile2" in descriptor.get_object():
                names.add(str(font["/BaseFont"]))
    return sorted(names)


def test_same_data_gives_the_same_bytes_dated_by_the_report():
    data = report_dict()
    first = build_report(data)
    assert build_report(report_dict()) == first
    assert b"D:20261120161530+08'00'" in first  # report_at 08:15:30 UTC, in Beijing time
    other = report_dict()
    other["summary"] = "另一意见"
    assert build_report(other) != first


@needs_poppler
def test_every_section_bidder_and_member_is_printed(tmp_path):
    data = report_dict()
    pages = _pages_text(build_report(data), tmp_path)
    text = "\n".join(pages)
    positions = [text.index(heading(i)) for i in range(len(SECTIONS))]
    positions.append(text.index(" / ".join(SUMMARY_HEADING)))
    assert positions == sorted(positions)  # the ten sections of §42 in order, then the summary
    assert heading(0) == "一、基本情况和数据表 / Basic data"
    for bid in data["opening"]["rows"]:
        assert bid["bidder"] in text and bid["price"] in text
    assert "否决测试有限公司" in text and "未提交投标保证金" in text
    for member in data["members"]:
        assert text.count(member["name"]) >= 3  # member list, score columns, signature page
    for needle in ("987654.32", "方案深度不足", "本人对T1评分持保留意见", "请澄清工期安排", "核实项目经理社保缴纳记录",
                   "2026-11-20 09:30:00"):  # opening 01:30 UTC printed in Beijing time
        assert needle in text
    for number, page in enumerate(pages, start=1):
        assert "TEST-2026-042" in page.split("\n", 1)[0]  # the tender code heads every page
        assert f"第 {number} 页 / 共 {len(pages)} 页" in page


@needs_poppler
def test_empty_lists_print_none(tmp_path):
    data = report_dict()
    for key in ("basics", "clarifications", "disputes", "dissents", "criteria", "method_lines"):
        data[key] = []
    data["opening"]["rows"] = []
    data["lots"] = [{"code": "01", "title": "空", "benchmark": None, "benchmark_lines": [], "qualified": [],
                     "rejected": [], "scores": [], "item_scores": [], "ranking": [], "candidates": [], "matters": []}]
    text = "\n".join(_pages_text(build_report(data), tmp_path))
    assert text.count(NONE) >= 12
    assert "评标基准价 Benchmark price: -" in text


@needs_poppler
def test_long_tables_repeat_their_header_on_each_page(tmp_path):
    pages = _pages_text(build_report(report_dict(members=9, bids=60, items=1)), tmp_path)
    with_scores_header = [p for p in pages if "价格分 Price" in p and "偏差率" in p]
    assert len(with_scores_header) >= 2
    assert "山东测试第60建筑有限公司" in "\n".join(pages)


def test_the_chinese_font_is_embedded():
    pdf = build_report(report_dict())
    assert _embedded_font_files(pdf)
    assert all(CJK_FONT_NAME in name for name in _embedded_font_files(pdf))
    explanation = build_explanation(_explanation())
    assert any(CJK_FONT_NAME in name for name in _embedded_font_files(explanation))


@needs_poppler
def test_pdffonts_reports_the_font_embedded(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(build_report(report_dict()))
    lines = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(lines) > 2
    for line in lines[2:]:
        assert CJK_FONT_NAME in line and line.split()[-5] == "yes"  # the "emb" column


@pytest.mark.parametrize("members", [1, 3, 9, 13])
def test_one_empty_signature_field_per_member_on_the_last_pages(members):
    data = report_dict(members=members)
    pdf = build_report(data)
    reader = _reader(pdf)
    found = list(fields.enumerate_sig_fields(reader))
    assert [name for name, _, _ in found] == signature_fields(data) == [f"Member{i}" for i in range(1, members + 1)]
    assert all(value is None for _, value, _ in found)
    kids = [ref.get_object() for ref in reader.root["/Pages"]["/Kids"]]
    page_count = int(reader.root["/Pages"]["/Count"])
    boxes: dict[int, list[list[float]]] = {}
    for _, _, ref in found:
        widget = ref.get_object()
        page_index = next(i for i, page in enumerate(kids) if page is widget["/P"].get_object() or
                          page == widget["/P"].get_object())
        rect = [float(v) for v in widget["/Rect"]]
        assert 0 <= rect[0] < rect[2] <= 842 and 0 <= rect[1] < rect[3] <= 596
        for other in boxes.get(page_index, []):  # boxes on one page do not overlap
            assert rect[1] >= other[3] or rect[3] <= other[1]
        boxes.setdefault(page_index, []).append(rect)
    assert max(boxes) == page_count - 1  # the signature page(s) close the report
    assert min(boxes) >= page_count - 2 - members // 8
    assert int(reader.root["/AcroForm"]["/SigFlags"]) == 3


@pytest.mark.parametrize(("change", "code"), [
    (lambda d: d.update(members=[]), "no_members"),
    (lambda d: d["members"][1].update(field="Member1"), "duplicate_field"),
    (lambda d: d["members"][0].update(field="委员.1"), "bad_field"),
    (lambda d: d["tender"].update(code=""), "no_tender"),
])
def test_bad_input_is_refused_with_what_to_fix(change, code):
    data = report_dict()
    change(data)
    with pytest.raises(ValidationFailed) as info:
        build_report(data)
    assert info.value.code == code
    assert str(info.value.message)


# ------------------------------------------------------------------------------- the explanation annex

def _explanation(steps: int = 3) -> dict[str, Any]:
    base = [{"title": "评标基准价 Benchmark price", "formula": "B = (981111.50 + 982222.50) / 2 × 0.97",
             "result": "952216.63"},
            {"title": "偏差率 Deviation", "formula": "D = (981111.50 − 952216.63) / 952216.63 × 100%",
             "result": "3.03%"},
            {"title": "价格分 Price score", "formula": "60 − 3.03 × 2", "result": "53.94"}]
    rows = (base * (steps // 3 + 1))[:steps]
    return {"tender": {"code": "TEST-2026-042", "title": "测试道路改造工程"}, "lot": "01 道路主体",
            "bidder": "山东测试第1建筑有限公司", "price": "981111.50", "steps": rows,
            "note": "按招标文件第三章 2.2.4 款计算", "generated_at": "2026-11-20T08:15:30+00:00"}


@needs_poppler
def test_the_explanation_shows_its_numbers(tmp_path):
    pdf = build_explanation(_explanation())
    assert build_explanation(_explanation()) == pdf
    text = "\n".join(_pages_text(pdf, tmp_path))
    for needle in ("TEST-2026-042", "山东测试第1建筑有限公司", "981111.50", "952216.63", "3.03%", "53.94",
                   "2.2.4", "第 1 页 / 共 1 页"):
        assert needle in text


@needs_poppler
def test_a_long_explanation_runs_over_pages(tmp_path):
    pages = _pages_text(build_explanation(_explanation(steps=90)), tmp_path)
    assert len(pages) >= 2
    assert all("公式 Formula" in page for page in pages[:-1])  # the header row repeats
    empty = _explanation()
    empty["steps"], empty["note"], empty["lot"] = [], None, {"code": "02", "title": "附属工程"}
    text = "\n".join(_pages_text(build_explanation(empty), tmp_path))
    assert NONE in text and "标段 Lot: 02 附属工程" in text


def test_the_explanation_needs_a_tender_code():
    data = _explanation()
    data["tender"] = {}
    with pytest.raises(ValidationFailed) as info:
        build_explanation(data)
    assert info.value.code == "no_tender"
