"""The opening record as a PDF (开标记录): set with reportlab in the shipped CJK font, two signature fields.

Pure: a dict in, bytes out. The record is a legal document, so its labels are fixed and bilingual
(Chinese first, English beside) and do not change with the reader's language. The bottom band of every
page is kept free: the host's and the supervisor's signature fields sit there on the last page.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.clock import beijing
from core.pdf import add_empty_signature_fields, register_cjk_font

HOST_FIELD, SUPERVISOR_FIELD = "Host", "Supervisor"
FIELD_OF_ROLE = {"host": HOST_FIELD, "supervisor": SUPERVISOR_FIELD}
SIGNATURE_BOXES = {HOST_FIELD: (60, 36, 330, 116), SUPERVISOR_FIELD: (510, 36, 780, 116)}
BOTTOM_BAND = 130  # points kept free at the bottom of every page for the signature boxes

_KIND = {"waiver": "免收/Waiver", "cash_bond": "现金/Cash bond", "e_guarantee": "电子保函/E-guarantee",
         "none": "无/None", "unknown": "未核验/Unchecked"}
_CAUSE = {"bidder": "投标人原因/bidder", "platform": "平台原因/platform", "ca": "CA原因/CA",
          "network": "网络原因/network", "unknown": "原因不明/unknown"}
_OUTCOME = {"revoked": "视为撤销/deemed revoked", "withdrawn": "视为撤回/deemed withdrawn"}
_RESPONSE = {"confirmed": "确认无异议/Confirmed", "objected": "提出异议/Objected",
             "silent": "未答复，视为无异议/Silent: no objection"}


def when(value: datetime | str | None) -> str:
    """A moment in Beijing time (北京时间) as printed on the record."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return beijing(value).strftime("%Y-%m-%d %H:%M:%S")


def bond_text(bond: dict[str, Any]) -> str:
    verdict = {True: "通过/passed", False: "未通过/failed", None: "-"}[bond.get("passed")]
    reasons = "; ".join(bond.get("reasons") or []) if bond.get("passed") is False else ""
    return f"{_KIND.get(bond.get('kind'), bond.get('kind'))} {verdict}" + (f" ({reasons})" if reasons else "")


def decryption_text(row: dict[str, Any]) -> str:
    d = row.get("decryption") or {}
    if d.get("result") == "decrypted":
        return "解密成功/Decrypted" + (f" ({d['method']})" if d.get("method") else "")
    return (f"解密失败/Failed: {_CAUSE.get(d.get('cause'), d.get('cause'))}, "
            f"{_OUTCOME.get(d.get('outcome'), d.get('outcome'))}" + (f". {d['reason']}" if d.get("reason") else ""))


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=11, wordWrap="CJK")
    return {"base": base, "title": ParagraphStyle("title", parent=base, fontSize=16, leading=22, alignment=1),
            "h": ParagraphStyle("h", parent=base, fontSize=11, leading=16, spaceBefore=8, spaceAfter=3),
            "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5)}


def _table(data: list[list[Any]], widths: list[float], font: str) -> Table:
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
                               ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text if text is not None else "-")).replace("\n", "<br/>"), style)


def _bid_rows(doc: dict[str, Any], s: dict[str, ParagraphStyle]) -> list[list[Any]]:
    head = ["标段\nLot", "投标人\nBidder", "投标报价\nPrice", "工期\nDuration", "质量\nQuality",
            "项目经理\nProject manager", "保证金\nBond", "解密\nDecryption"]
    out = [[_p(h, s["small"]) for h in head]]
    for r in doc["rows"]:
        manager = r.get("project_manager") or {}
        out.append([_p(r["lot"], s["base"]), _p(f"{r['bidder']}\n{r['uscc']}", s["base"]),
                    _p(f"{r['price']} {r['currency']}" if r.get("price") else "-", s["base"]),
                    _p(f"{r['duration_days']} 日历天/days" if r.get("duration_days") else "-", s["base"]),
                    _p(r.get("quality") or "-", s["base"]),
                    _p(f"{manager.get('name')}\n{manager.get('certificate_no')}" if manager else "-", s["base"]),
                    _p(bond_text(r["bond"]), s["small"]), _p(decryption_text(r), s["small"])])
    return out


def story(doc: dict[str, Any], font: str) -> list[Any]:
    """The flowables of the record: heading, bids, draws, responses, objections, log head, hand-off."""
    s = _styles(font)
    t = doc["tender"]
    parts: list[Any] = [_p("开标记录 Opening record", s["title"]), Spacer(1, 4),
                        _p(f"项目 Tender: {t['code']} {t['title']}", s["base"]),
                        _p(f"招标人 Tenderer: {t['tenderer']}    开标时间 Opening: {when(t['opening_at'])} 北京时间",
                           s["base"]),
                        _p("标段 Lots: " + "; ".join(f"{lot['code']} {lot['title']}" for lot in doc["lots"]),
                           s["base"]),
                        _p(f"记录版本 Version {doc['version']}, 生成 built {when(doc['built_at'])}; "
                           f"SHA-256 of the rows: {doc['rows_sha256']}", s["small"]),
                        _p("唱标 Bids read out", s["h"]),
                        _table(_bid_rows(doc, s), [40, 150, 85, 65, 60, 110, 125, 125], font)]
    if doc.get("draws"):
        parts.append(_p("随机抽取 Random draws", s["h"]))
        data = [[_p(h, s["small"]) for h in ("名称 Name", "承诺 Commitment SHA-256(seed)", "种子 Seed", "结果 Result")]]
        data += [[_p(d["name"], s["base"]), _p(d["commitment"], s["small"]), _p(d.get("seed") or "-", s["small"]),
                  _p(d.get("result") or "-", s["base"])] for d in doc["draws"]]
        parts.append(_table(data, [60, 300, 300, 100], font))
    parts.append(_p("投标人确认 Bidders' confirmations", s["h"]))
    data = [[_p(h, s["small"]) for h in ("投标人 Bidder", "答复 Response", "时间 At")]]
    data += [[_p(f"{r['bidder']} ({r['uscc']})", s["base"]), _p(_RESPONSE.get(r["kind"], r["kind"]), s["base"]),
              _p(when(r["at"]), s["base"])] for r in doc["responses"]]
    parts.append(_table(data, [300, 250, 150], font))
    parts.append(_p("异议及答复 Objections and answers", s["h"]))
    if not doc["objections"]:
        parts.append(_p("无异议 No objection was raised.", s["base"]))
    for o in doc["objections"]:
        attachment = (f"\n附件 Attachment: {o['attachment']['name']} SHA-256 {o['attachment']['sha256']}"
                      if o.get("attachment") else "")
        parts.append(_p(f"{o['bidder']} ({when(o['raised_at'])}): {o['text']}{attachment}", s["base"]))
        parts.append(_p(f"主持人答复 Host's answer ({when(o['answered_at'])}): {o['answer']}", s["base"]))
        parts.append(Spacer(1, 4))
    head = doc.get("final_head") or {}
    handoff = doc.get("handoff") or {}
    parts += [_p("透明日志与移交核验 Transparency log and hand-off check", s["h"]),
              _p(f"截止时最终树头 Final tree head: size {head.get('size', '-')}, root {head.get('root', '-')}",
                 s["small"]),
              _p(f"移交核验 Hand-off check: {'通过/passed' if handoff.get('ok') else '未通过/failed'}"
                 f"{' — ' + handoff['message'] if handoff.get('message') else ''}", s["small"]),
              Spacer(1, 6),
              _p("主持人和监督人在下方以电子签名签署本记录（PAdES）。The host and the supervisor sign this record "
                 "below with electronic signatures (PAdES); verify them with pdfsig and the platform CA.", s["small"])]
    return parts


def render_record(doc: dict[str, Any]) -> bytes:
    """Set the record on landscape A4 pages; the signature band at the bottom stays free."""
    font = register_cjk_font()
    out = io.BytesIO()
    width, height = landscape(A4)
    template = SimpleDocTemplate(out, pagesize=(width, height), leftMargin=36, rightMargin=36, topMargin=36,
                                 bottomMargin=BOTTOM_BAND, title=f"开标记录 {doc['tender']['code']}",
                                 author="ebid", subject="Opening record", invariant=1,
                                 initialFontName=font, initialFontSize=9)
    template.build(story(doc, font))
    return out.getvalue()


def prepare_record_pdf(doc: dict[str, Any]) -> bytes:
    """The record with the two empty signature fields (Host, Supervisor) on its last page."""
    return add_empty_signature_fields(render_record(doc), SIGNATURE_BOXES)
