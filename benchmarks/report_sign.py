"""Evaluation report (评标报告): build, sign by every member, validate — against a bare pyHanko baseline.

    .venv/bin/python benchmarks/report_sign.py                       # 9 members, 20 pages, 7 pairs
    .venv/bin/python benchmarks/report_sign.py --pairs 11 --json report.json
    .venv/bin/python benchmarks/report_sign.py --members 13 --pages 30 --profile ebid

PERFORMANCE.md: "evaluation report of 20 pages signed by 9 experts, then validated: under 1 s in all,
and within 2x of the baseline: reportlab build + pyHanko sign of an empty page, x9, then validate".

Set-up, not timed: a throwaway EC P-256 CA and one key and certificate per member (tests/evaluation/report_certs.py),
and synthetic report data sized so that ``build_report`` gives exactly ``--pages`` pages (the page
count is asserted). Each *pair* then times, in the same process and alternating which goes first:

* ebid: ``build_report`` (reportlab, CJK font embedded, one empty field per member added as one
  incremental update) → ``sign_report`` once per member, each an incremental PAdES signature of the
  previous output → ``verify_report``, which must say "final";
* the baseline: reportlab builds one empty A4 page, pyHanko signs it once per member, each signature
  creating its own new field with the same plain stamp, then every signature is validated with
  ``validate_pdf_signature`` (diff analysis included) under one ValidationContext, as in the
  LIBRARIES.md recipe.

Medians over the pairs are printed (total, ratio ebid / baseline per pair, and each phase), with the
page count, the final file size and the load average; ``--json PATH`` writes one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: E402
from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: E402
from pyhanko.sign import fields, signers  # noqa: E402
from pyhanko.sign.validation import validate_pdf_signature  # noqa: E402
from pyhanko.stamp import TextStampStyle  # noqa: E402
from pyhanko_certvalidator import ValidationContext  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

from core.pdf import simple_signer, to_asn1  # noqa: E402
from evaluation.report_pdf import build_report  # noqa: E402
from evaluation.report_verify import FINAL, sign_report, verify_report  # noqa: E402
from tests.evaluation.report_certs import Member, TestCA  # noqa: E402

TARGET_S, TARGET_RATIO = 1.0, 2.0
MIN_PAGES = 3  # the ten sections with empty lists fill two pages; the signature page is always a page of its own


# --------------------------------------------------------------------------------- synthetic data

def report_data(members: Sequence[Member], lots: int = 2, bids_per_lot: int = 8, items: int = 4,
                extras: bool = True) -> dict[str, Any]:
    """A complete report dict: ``lots`` lots of ``bids_per_lot`` bids, ``items`` scored criteria each; without
    ``extras`` the clarification and the disputed point are left out (the smallest reports)."""
    committee = [{"field": m.field, "name": m.name, "role": "组长/Chair" if i == 0 else "成员/Member",
                  "specialty": "房屋建筑工程", "employer": f"青岛市某建筑设计研究院第{i + 1}分院"}
                 for i, m in enumerate(members)]
    fields_ = [m.field for m in members]
    criteria = [{"code": f"T{k}", "group": "技术", "title": f"技术评审因素{k}：施工组织设计与技术措施",
                 "kind": "score", "range": "0–10"} for k in range(1, items + 1)]
    lot_list, opening_rows = [], []
    for lot_no in range(1, lots + 1):
        bidders = [f"青岛第{b}建设工程集团有限公司" for b in range(1, bids_per_lot + 1)]
        prices = [f"{1_200_000 + 3_517 * b}.{b % 100:02d}" for b in range(1, bids_per_lot + 1)]
        scores, items_ = [], []
        for b, (bidder, price) in enumerate(zip(bidders, prices, strict=True)):
            scores.append({"bidder": bidder, "price": price, "evaluated_price": price, "deviation": f"-{b % 5}.25%",
                           "price_score": f"{58 - b % 7}.40", "subjective": f"{25 + b % 4}.50",
                           "total": f"{84 - b % 9}.90", "rank": b + 1, "flags": ["低于成本预警"] if b == 3 else []})
            for k in range(1, items + 1):
                by = {f: f"{6 + (b + k + i) % 4}.5" for i, f in enumerate(fields_)}
                items_.append({"bidder": bidder, "code": f"T{k}", "by_member": by, "average": "7.50",
                               "dropped": [fields_[0], fields_[-1]] if len(fields_) >= 5 else []})
            opening_rows.append({"lot": f"0{lot_no}", "bidder": bidder, "price": price, "duration_days": 365,
                                 "quality": "合格", "project_manager": f"项目经理{b + 1}", "bond": "电子保函/E-guarantee"})
        lot_list.append({
            "code": f"0{lot_no}", "title": f"第{lot_no}标段 教学楼土建及安装", "benchmark": "1187654.32",
            "benchmark_lines": ["B = 有效投标报价算术平均值 × (1 - 3%)"],
            "qualified": [{"bidder": b, "price": p} for b, p in zip(bidders, prices, strict=True)],
            "rejected": [{"bidder": "青岛否决建设有限公司", "reasons": ["投标保证金未按招标文件要求提交", "报价超过最高投标限价"]}],
            "scores": scores, "item_scores": items_,
            "ranking": [{"rank": s["rank"], "bidder": s["bidder"], "total_or_price": s["total"]} for s in scores],
            "candidates": [{"rank": i + 1, "bidder": s["bidder"], "price": s["price"], "note": ""}
                           for i, s in enumerate(scores[:3])],
            "matters": ["中标候选人项目经理在岗情况核查", "澄清中承诺的工期需写入合同"]})
    data = {
        "tender": {"code": "BENCH-2026-0001", "title": "青岛市某学校教学楼工程施工", "tenderer": "青岛市某学校",
                   "agency": "青岛某招标代理有限公司", "regime": "工程建设/Works", "method": "综合评估法/Comprehensive",
                   "method_version": 1, "opening_at": "2026-11-20T01:30:00+00:00",
                   "started_at": "2026-11-20T02:30:00+00:00", "completed_at": "2026-11-20T08:30:00+00:00",
                   "report_at": "2026-11-20T09:00:00+00:00"},
        "basics": [["最高投标限价 Ceiling price", "1500000.00"], ["投标人数 Bidders", str(lots * bids_per_lot)]],
        "members": committee,
        "opening": {"sha256": "5f" * 32, "published_at": "2026-11-20T02:00:00+00:00", "rows": opening_rows},
        "criteria": criteria, "method_lines": ["价格分 60 分，技术分 30 分，商务分 10 分。"],
        "lots": lot_list,
        "clarifications": [{"bidder": "青岛第1建设工程集团有限公司", "question": "请说明主要材料单价的构成。",
                            "answer": "已按市场询价说明，附询价记录。", "asked_at": "2026-11-20T03:00:00+00:00",
                            "answered_at": "2026-11-20T03:40:00+00:00", "status": "已答复/Answered"}],
        "disputes": [{"bidder": "青岛第2建设工程集团有限公司", "criterion": "T1", "reason": "评分差异超过规定幅度",
                      "outcome": "维持原评分/Kept", "votes": [{"member": m.name, "vote": "同意/Agree", "reason": ""}
                                                          for m in members]}],
        "dissents": [],
        "summary": "评标委员会按招标文件规定的评标办法完成评审，推荐排名前三的投标人为中标候选人。"}
    if not extras:
        data["clarifications"], data["disputes"] = [], []
    return data


def page_count(pdf: bytes) -> int:
    return int(PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"])


def sized_report_data(members: Sequence[Member], pages: int) -> dict[str, Any]:
    """Report data whose built PDF has exactly ``pages`` pages (bids per lot, then scored items, adjusted)."""
    for lots, items, extras in ((2, 4, True), (1, 4, True), (1, 1, True), (1, 1, False), (0, 1, False)):
        for bids in range(0, 200):
            data = report_data(members, lots=lots, bids_per_lot=bids, items=items, extras=extras)
            got = page_count(build_report(data))
            if got == pages:
                return data
            if got > pages:
                break
    raise ValueError(f"no synthetic data gives exactly {pages} pages (the smallest report has {MIN_PAGES})")


# --------------------------------------------------------------------------------- the two sides

def run_ebid(data: dict[str, Any], ca: TestCA, members: Sequence[Member]) -> dict[str, Any]:
    """Build, sign by every member, verify; per-phase seconds, the page count and the final size."""
    t0 = time.perf_counter()
    pdf = build_report(data)
    t1 = time.perf_counter()
    signs = []
    for m in members:
        start = time.perf_counter()
        pdf = sign_report(pdf, m.field, m.key, m.cert, [ca.cert], m.field)
        signs.append(time.perf_counter() - start)
    t2 = time.perf_counter()
    verdict = verify_report(pdf, ca.cert, [(m.field, m.name) for m in members])
    t3 = time.perf_counter()
    if verdict.status != FINAL:
        raise AssertionError(f"the signed report is not final: {verdict.problems}")
    return {"total": t3 - t0, "build": t1 - t0, "sign": t2 - t1, "sign_each": signs, "validate": t3 - t2,
            "pages": page_count(pdf), "bytes": len(pdf)}


def _empty_page() -> bytes:
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, invariant=1)
    c.showPage()
    c.save()
    return out.getvalue()


def run_baseline(ca: TestCA, members: Sequence[Member]) -> dict[str, Any]:
    """reportlab's empty page, pyHanko signs it once per member (a new field each), then validates all."""
    t0 = time.perf_counter()
    pdf = _empty_page()
    t1 = time.perf_counter()
    signs = []
    for i, m in enumerate(members):
        start = time.perf_counter()
        meta = signers.PdfSignatureMetadata(field_name=m.field, subfilter=fields.SigSeedSubFilter.PADES,
                                            md_algorithm="sha256", reason="评标报告 Evaluation report")
        row, col = divmod(i, 3)
        spec = fields.SigFieldSpec(m.field, on_page=-1, box=(40 + 180 * col, 700 - 60 * row,
                                                             200 + 180 * col, 746 - 60 * row))
        signer = signers.PdfSigner(meta, simple_signer(m.key, m.cert, [ca.cert]), new_field_spec=spec,
                                   stamp_style=TextStampStyle(stamp_text=f"{m.field} signed\n%(ts)s", border_width=1))
        pdf = signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf))).getvalue()
        signs.append(time.perf_counter() - start)
    t2 = time.perf_counter()
    context = ValidationContext(trust_roots=[to_asn1(ca.cert)], allow_fetching=False)
    sigs = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    ok = [validate_pdf_signature(sig, context).bottom_line for sig in sigs]
    t3 = time.perf_counter()
    if len(ok) != len(members) or not all(ok):
        raise AssertionError("a baseline signature does not validate")
    return {"total": t3 - t0, "build": t1 - t0, "sign": t2 - t1, "sign_each": signs, "validate": t3 - t2,
            "pages": page_count(pdf), "bytes": len(pdf)}


# --------------------------------------------------------------------------------- driver

def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def measure(members: int, pages: int, pairs: int) -> dict[str, Any]:
    ca = TestCA()
    committee = ca.members(members)
    data = sized_report_data(committee, pages)
    run_ebid(data, ca, committee)  # warm-up: imports, font registration, first-use tables
    run_baseline(ca, committee)
    load_before = os.getloadavg()
    raw = []
    for i in range(pairs):
        if i % 2 == 0:
            ebid, base = run_ebid(data, ca, committee), run_baseline(ca, committee)
        else:
            base, ebid = run_baseline(ca, committee), run_ebid(data, ca, committee)
        raw.append({"ebid": ebid, "baseline": base, "ratio": ebid["total"] / base["total"]})
    load_after = os.getloadavg()

    def phases(side: str) -> dict[str, float]:
        runs = [r[side] for r in raw]
        return {"total": _median([r["total"] for r in runs]), "build": _median([r["build"] for r in runs]),
                "sign": _median([r["sign"] for r in runs]),
                "sign_each": [_median([r["sign_each"][k] for r in runs]) for k in range(members)],
                "validate": _median([r["validate"] for r in runs])}

    return {"benchmark": "report_sign", "members": members, "pages": raw[0]["ebid"]["pages"],
            "baseline_pages": raw[0]["baseline"]["pages"], "pairs": pairs, "final_bytes": raw[0]["ebid"]["bytes"],
            "baseline_bytes": raw[0]["baseline"]["bytes"], "ebid": phases("ebid"), "baseline": phases("baseline"),
            "ratios": [r["ratio"] for r in raw], "ratio_median": _median([r["ratio"] for r in raw]),
            "load_before": load_before, "load_after": load_after,
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(result: dict[str, Any]) -> None:
    e, b = result["ebid"], result["baseline"]
    print(f"report: {result['pages']} pages, {result['members']} members, final file {result['final_bytes']:,} B "
          f"(baseline: {result['baseline_pages']} page, {result['baseline_bytes']:,} B); {result['pairs']} pairs")
    print(f"{'phase':<22}{'ebid':>10}{'baseline':>10}")
    for label, key in (("build", "build"), (f"sign x{result['members']}", "sign"), ("validate", "validate"),
                       ("total", "total")):
        print(f"{label:<22}{_ms(e[key]):>10}{_ms(b[key]):>10}")
    print("sign each, ebid:     " + ", ".join(f"{s * 1000:.0f}" for s in e["sign_each"]) + " ms")
    print("sign each, baseline: " + ", ".join(f"{s * 1000:.0f}" for s in b["sign_each"]) + " ms")
    print("ratio per pair: " + ", ".join(f"{r:.2f}" for r in result["ratios"]))
    ok_total, ok_ratio = e["total"] < TARGET_S, result["ratio_median"] <= TARGET_RATIO
    print(f"median total {_ms(e['total'])} (target < {TARGET_S:.0f} s: {'met' if ok_total else 'MISSED'}), "
          f"ratio median {result['ratio_median']:.2f} (target <= {TARGET_RATIO:.0f}: "
          f"{'met' if ok_ratio else 'MISSED'})")
    lb, la = result["load_before"], result["load_after"]
    print(f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}; "
          f"{result['machine']}")


def profile(side: str, members: int, pages: int, runs: int = 5) -> None:
    """cProfile of ``runs`` runs of one side, top 25 by cumulative time."""
    ca = TestCA()
    committee = ca.members(members)
    data = sized_report_data(committee, pages)
    work: Callable[[], Any] = (lambda: run_ebid(data, ca, committee)) if side == "ebid" else \
        (lambda: run_baseline(ca, committee))
    work()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        work()
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=9, help="committee members who sign (default 9)")
    parser.add_argument("--pages", type=int, default=20, help="pages of the report (default 20)")
    parser.add_argument("--pairs", type=int, default=7, help="alternating ebid/baseline pairs (default 7)")
    parser.add_argument("--json", type=Path, default=None, help="write one JSON line of results here")
    parser.add_argument("--profile", choices=("ebid", "baseline"), default=None,
                        help="print a cProfile of one side instead of measuring")
    args = parser.parse_args(argv)
    if args.members < 1 or args.pages < MIN_PAGES or args.pairs < 1:
        parser.error(f"give at least 1 member, {MIN_PAGES} pages and 1 pair")
    if args.profile:
        profile(args.profile, args.members, args.pages)
        return 0
    result = measure(args.members, args.pages, args.pairs)
    report(result)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
