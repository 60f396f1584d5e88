"""The evaluation report as a PDF (评标报告): reportlab in the shipped CJK font, one signature field per member.

Pure: a dict in, bytes out. The report is a legal document (12号令 §42), so its labels are fixed and
bilingual (Chinese first, English beside) and do not change with the reader's language. It has the ten
sections the rule lists, in its order, then the committee's summary and dissent, then one or more
signature pages: every member's field name, name and role with an empty PAdES signature field beside
the name, so each member signs their own field as an incremental update (see
:mod:`evaluation.report_verify`).

The same dict always gives the same bytes: reportlab runs in invariant mode with the creation date
taken from ``tender.report_at``, and the signature fields are added with a fixed document ID and
no modification date of the moment.

Input (all text already final; numbers are decimal strings; any list may be empty)::

    {"tender": {"code", "title", "tenderer", "agency", "regime", "method", "method_version",
                "opening_at", "started_at", "completed_at", "report_at"},   # ISO datetimes or None
     "basics": [[label, value], ...],
     "members": [{"field": "Member1", "name", "role", "specialty", "employer"}],
     "opening": {"sha256", "published_at", "rows": [{"lot", "bidder", "price", "duration_days", "quality",
                 "project_manager", "bond"}]},
     "criteria": [{"code", "group", "title", "kind", "range"}], "method_lines": [str],
     "lots": [{"code", "title", "benchmark", "benchmark_lines", "qualified": [{"bidder", "price"}],
               "rejected": [{"bidder", "reasons"}],
               "scores": [{"bidder", "price", "evaluated_price", "deviation", "price_score", "subjective",
                           "total", "rank", "flags"}],
               "item_scores": [{"bidder", "code", "by_member": {field: score}, "average", "dropped"}],
               "ranking": [{"rank", "bidder", "total_or_price"}],
               "candidates": [{"rank", "bidder", "price", "note"}], "matters": [str]}],
     "clarifications": [{"bidder", "question", "answer", "asked_at", "answered_at", "status"}],
     "disputes": [{"bidder", "criterion", "reason", "outcome", "votes": [{"member", "vote", "reason"}]}],
     "dissents": [{"member", "text"}],
     "summary": str}
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from flask_babel import lazy_gettext as _l
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from bidding.record_pdf import when
from core.clock import beijing
from core.errors import ValidationFailed
from core.pdf import add_signature_fields as core_add_signature_fields
from core.pdf import register_cjk_font

PAGE = landscape(A4)
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 36, 48, 42
FRAME_WIDTH = PAGE[0] - 2 * MARGIN_X
BOX_WIDTH, BOX_HEIGHT = 230, 46  # the signature box beside each member's name, in points
NONE = "无/None"

# 12号令 §42: the ten parts of the report, in this order
SECTIONS = (
    ("一", "基本情况和数据表", "Basic data"),
    ("二", "评标委员会成员名单", "Evaluation committee members"),
    ("三", "开标记录", "Opening record"),
    ("四", "符合要求的投标一览表", "Bids meeting the requirements"),
    ("五", "否决投标情况说明", "Rejected bids"),
    ("六", "评标标准、评标方法或者评标因素一览表", "Evaluation criteria and method"),
    ("七", "经评审的价格或者评分比较一览表", "Evaluated prices and scores compared"),
    ("八", "经评审的投标人排序", "Ranking of the bidders"),
    ("九", "推荐的中标候选人名单与签订合同前要处理的事宜", "Recommended candidates and matters before the contract"),
    ("十", "澄清、说明、补正事项纪要", "Clarifications, explanations and corrections"),
)
SUMMARY_HEADING = ("评标委员会意见及不同意见", "Committee summary and dissent")
SIGNATURE_HEADING = ("评标委员会成员签名", "Signatures of the committee members")
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def heading(index: int) -> str:
    """The printed heading of section ``index`` (0-based), e.g. "一、基本情况和数据表 / Basic data"."""
    number, chinese, english = SECTIONS[index]
    return f"{number}、{chinese} / {english}"


def signature_fields(data: Mapping[str, Any]) -> list[str]:
    """The names of the report's signature fields, one per committee member, in the members' order."""
    return [str(m["field"]) for m in data.get("members") or []]


def _check(data: Mapping[str, Any]) -> None:
    members = data.get("members") or []
    if not members:
        raise ValidationFailed(_l("The report has no committee member; add the members before building it."),
                               code="no_members")
    names = signature_fields(data)
    bad = [n for n in names if not _FIELD_NAME.match(n)]
    if bad:
        raise ValidationFailed(_l("The signature field name %(name)s is not usable: use letters, digits, '_' "
                                  "or '-', starting with a letter (for example Member1)."), code="bad_field",
                               name=bad[0])
    if len(set(names)) != len(names):
        raise ValidationFailed(_l("Two members have the same signature field name; give each member its own."),
                               code="duplicate_field")
    if not (data.get("tender") or {}).get("code"):
        raise ValidationFailed(_l("The report has no tender code; give the tender's code."), code="no_tender")


# --------------------------------------------------------------------------------- page furniture

class _Moment:
    """A fixed creation date for reportlab's document info (the shape of reportlab's TimeStamp)."""

    def __init__(self, at: datetime) -> None:
        local = beijing(at)
        self.YMDhms = (local.year, local.month, local.day, local.hour, local.minute, local.second)
        self.dhh, self.dmm = 8, 0
        self.t = local.timestamp()
        self.tzname = "Asia/Shanghai"


class NumberedCanvas(rl_canvas.Canvas):
    """Holds the pages back until the end, so that each footer can print the page count (共 y 页).

    The header carries ``header_text`` (the tender code) and ``title_text`` on every page; subclass it
    (``type(...)``) per document to set them and ``created``, the fixed creation date.
    """

    created: datetime | None = None
    header_text = ""
    title_text = "评标报告 Evaluation report"
    page_size = PAGE
    margin_x = MARGIN_X

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held_pages: list[dict[str, Any]] = []
        if self.created is not None:
            self._doc._timeStamp = _Moment(self.created)  # CreationDate/ModDate = the report's date

    @property
    def page_index(self) -> int:
        """0-based index of the page being drawn."""
        return len(self._held_pages)

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._held_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._held_pages)
        for number, state in enumerate(self._held_pages, start=1):
            self.__dict__.update(state)
            self._furniture(number, total)
            super().showPage()
        super().save()

    def _furniture(self, number: int, total: int) -> None:
        font = register_cjk_font()
        width, height = self.page_size
        self.saveState()
        self.setFont(font, 8)
        self.setFillColor(colors.Color(0.3, 0.3, 0.3))
        self.drawString(self.margin_x, height - 28, self.header_text)
        self.drawRightString(width - self.margin_x, height - 28, self.title_text)
        self.setStrokeColor(colors.Color(0.6, 0.6, 0.6))
        self.setLineWidth(0.4)
        self.line(self.margin_x, height - 33, width - self.margin_x, height - 33)
        self.drawCentredString(width / 2, 22, f"第 {number} 页 / 共 {total} 页   Page {number} of {total}")
        self.restoreState()


class _SignatureBox(Flowable):
    """An empty box; when drawn it records where it landed, so the signature field can be put on it."""

    def __init__(self, field: str, placements: dict[str, tuple[int, tuple[int, int, int, int]]]) -> None:
        super().__init__()
        self.field, self.placements = field, placements
        self.width, self.height = BOX_WIDTH, BOX_HEIGHT

    def draw(self) -> None:
        self.canv.saveState()
        self.canv.setStrokeColor(colors.Color(0.55, 0.55, 0.55))
        self.canv.setDash(2, 2)
        self.canv.rect(0, 0, self.width, self.height)
        self.canv.restoreState()
        x, y = self.canv.absolutePosition(0, 0)
        box = (round(x), round(y), round(x + self.width), round(y + self.height))
        self.placements[self.field] = (self.canv.page_index, box)


# --------------------------------------------------------------------------------- building blocks

class Kit:
    """Styles and cell makers for one build (shared with the explanation annex)."""

    def __init__(self, font: str) -> None:
        self.font = font
        base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=11, wordWrap="CJK")
        self.base = base
        self.cell = ParagraphStyle("cell", parent=base, fontSize=8, leading=10)
        self.small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5)
        self.title = ParagraphStyle("title", parent=base, fontSize=18, leading=26, alignment=1)
        self.h1 = ParagraphStyle("h1", parent=base, fontSize=12, leading=17, spaceBefore=10, spaceAfter=4)
        self.h2 = ParagraphStyle("h2", parent=base, fontSize=9.5, leading=13, spaceBefore=6, spaceAfter=2)

    def p(self, text: Any, style: ParagraphStyle | None = None) -> Paragraph:
        value = "-" if text is None or text == "" else str(text)
        return Paragraph(escape(value).replace("\n", "<br/>"), style or self.base)

    def c(self, text: Any, width: float, style: ParagraphStyle | None = None) -> Any:
        """A table cell: a plain string when it fits on one line (cheap), else a wrapping paragraph."""
        value = "-" if text is None or text == "" else str(text)
        style = style or self.cell
        if "\n" not in value and stringWidth(value, self.font, style.fontSize) <= width - 8:
            return value
        return self.p(value, style)

    def table(self, head: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float],
              extra: Sequence[tuple] = ()) -> Table:
        """A table whose header row repeats on every page it runs over."""
        data = [[self.c(h, w, self.small) for h, w in zip(head, widths, strict=True)]]
        data += [[self.c(v, w) for v, w in zip(row, widths, strict=True)] for row in rows]
        table = Table(data, colWidths=list(widths), repeatRows=1)
        table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), self.font), ("FONTSIZE", (0, 0), (-1, -1), 8),
                                   ("FONTSIZE", (0, 0), (-1, 0), 7.5), ("LEADING", (0, 0), (-1, -1), 10),
                                   ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP"), *extra]))
        return table

    def none(self) -> Paragraph:
        return self.p(NONE)


def _scaled(widths: Sequence[float]) -> list[float]:
    """Column widths scaled to fill the frame."""
    total = sum(widths)
    return [w * FRAME_WIDTH / total for w in widths]


def _lot_title(lot: Mapping[str, Any]) -> str:
    return f"标段 Lot {lot.get('code') or '-'} {lot.get('title') or ''}".strip()


def _lines(kit: Kit, lines: Sequence[Any], style: ParagraphStyle | None = None) -> list[Any]:
    return [kit.p(line, style) for line in lines] if lines else [kit.none()]


# --------------------------------------------------------------------------------- the sections

def _basics(kit: Kit, data: Mapping[str, Any]) -> list[Any]:
    t = data["tender"]
    method = t.get("method") or "-"
    if t.get("method_version"):
        method = f"{method} (v{t['method_version']})"
    rows = [["项目编号 Tender code", t.get("code")], ["项目名称 Tender title", t.get("title")],
            ["招标人 Tenderer", t.get("tenderer")], ["招标代理机构 Agency", t.get("agency")],
            ["适用制度 Regime", t.get("regime")], ["评标办法 Method", method],
            ["开标时间 Opening (北京时间)", when(t.get("opening_at"))],
            ["评标开始 Evaluation started", when(t.get("started_at"))],
            ["评标结束 Evaluation completed", when(t.get("completed_at"))],
            ["报告日期 Report date", when(t.get("report_at"))]]
    rows += [[label, value] for label, value in data.get("basics") or []]
    return [kit.table(["项目 Item", "内容 Value"], rows, _scaled([1, 3]))]


def _members(kit: Kit, data: Mapping[str, Any]) -> list[Any]:
    rows = [[i, m.get("name"), m.get("role"), m.get("specialty"), m.get("employer"), m.get("field")]
            for i, m in enumerate(data.get("members") or [], start=1)]
    return [kit.table(["序号 No.", "姓名 Name", "职责 Role", "专业 Specialty", "工作单位 Employer", "签名栏 Field"],
                      rows, _scaled([0.5, 1.2, 1.2, 1.6, 2.6, 1]))]


def _opening(kit: Kit, data: Mapping[str, Any]) -> list[Any]:
    o = data.get("opening") or {}
    parts: list[Any] = [kit.p(f"开标记录发布 Published: {when(o.get('published_at'))} 北京时间; "
                              f"开标记录 SHA-256 of the signed record: {o.get('sha256') or '-'}", kit.small)]
    rows = [[r.get("lot"), r.get("bidder"), r.get("price"), r.get("duration_days"), r.get("quality"),
             r.get("project_manager"), r.get("bond")] for r in o.get("rows") or []]
    if rows:
        parts.append(kit.table(["标段 Lot", "投标人 Bidder", "投标报价 Price", "工期(日历天) Days", "质量 Quality",
                                "项目经理 Project manager", "保证金 Bond"], rows, _scaled([0.6, 2.6, 1.2, 0.8, 1, 1.4,
                                                                                     1.6])))
    else:
        parts.append(kit.none())
    return parts


def _per_lot(kit: Kit, data: Mapping[str, Any], make) -> list[Any]:
    lots = data.get("lots") or []
    if not lots:
        return [kit.none()]
    parts: list[Any] = []
    for lot in lots:
        parts.append(kit.p(_lot_title(lot), kit.h2))
        parts += make(lot)
    return parts


def _qualified(kit: Kit, lot: Mapping[str, Any]) -> list[Any]:
    rows = [[i, q.get("bidder"), q.get("price")] for i, q in enumerate(lot.get("qualified") or [], start=1)]
    if not rows:
        return [kit.none()]
    return [kit.table(["序号 No.", "投标人 Bidder", "投标报价 Price"], rows, _scaled([0.4, 4, 1.4]))]


def _rejected(kit: Kit, lot: Mapping[str, Any]) -> list[Any]:
    rows = [[r.get("bidder"), "\n".join(f"{i}. {reason}" for i, reason in enumerate(r.get("reasons") or [], 1))]
            for r in lot.get("rejected") or []]
    if not rows:
        return [kit.none()]
    return [kit.table(["投标人 Bidder", "否决理由及依据 Reasons and grounds"], rows, _scaled([1.6, 4]))]


def _criteria(kit: Kit, data: Mapping[str, Any]) -> list[Any]:
    rows = [[c.get("code"), c.get("group"), c.get("title"), c.get("kind"), c.get("range")]
            for c in data.get("criteria") or []]
    parts: list[Any] = [kit.p("评标办法 Method", kit.h2), *_lines(kit, data.get("method_lines") or []),
                        kit.p("评审因素 Criteria", kit.h2)]
    parts.append(kit.table(["编号 Code", "类别 Group", "评审因素 Criterion", "类型 Kind", "分值 Range"], rows,
                           _scaled([0.6, 0.8, 4, 1, 0.8])) if rows else kit.none())
    return parts


def _compared(kit: Kit, data: Mapping[str, Any], lot: Mapping[str, Any]) -> list[Any]:
    parts: list[Any] = [kit.p(f"评标基准价 Benchmark price: {lot.get('benchmark') or '-'}", kit.base)]
    parts += [kit.p(line, kit.small) for line in lot.get("benchmark_lines") or []]
    rows = [[s.get("rank"), s.get("bidder"), s.get("price"), s.get("evaluated_price"), s.get("deviation"),
             s.get("price_score"), s.get("subjective"), s.get("total"), "; ".join(s.get("flags") or [])]
            for s in lot.get("scores") or []]
    parts.append(kit.table(["排名 Rank", "投标人 Bidder", "投标报价 Price", "评标价 Evaluated", "偏差率 Deviation",
                            "价格分 Price score", "评审分 Other scores", "总分 Total", "提示 Flags"], rows,
                           _scaled([0.5, 2.4, 1.1, 1.1, 0.8, 0.8, 0.8, 0.7, 1.6])) if rows else kit.none())
    items = lot.get("item_scores") or []
    if items:
        members = data.get("members") or []
        fields_ = [m["field"] for m in members]
        parts.append(kit.p("各成员评分 Scores by member (灰底为计算时去掉的分数 grey: dropped when averaging)", kit.h2))
        head = ["投标人 Bidder", "因素 Code", *[f"{m.get('name') or m['field']}" for m in members],
                "平均 Average", "去掉 Dropped"]
        member_w = min(48.0, (FRAME_WIDTH - 300) / max(len(members), 1))
        widths = [FRAME_WIDTH - 176 - member_w * len(members), 48, *[member_w] * len(members), 50, 78]
        rows, marks = [], []
        for r, item in enumerate(items, start=1):
            by = item.get("by_member") or {}
            dropped = list(item.get("dropped") or [])
            rows.append([item.get("bidder"), item.get("code"), *[by.get(f, "-") for f in fields_],
                         item.get("average"), ", ".join(dropped)])
            marks += [("BACKGROUND", (2 + col, r), (2 + col, r), colors.Color(0.85, 0.85, 0.85))
                      for col, f in enumerate(fields_) if f in dropped]
        parts.append(kit.table(head, rows, widths, marks))
    return parts


def _ranking(kit: Kit, lot: Mapping[str, Any]) -> list[Any]:
    rows = [[r.get("rank"), r.get("bidder"), r.get("total_or_price")] for r in lot.get("ranking") or []]
    if not rows:
        return [kit.none()]
    return [kit.table(["排序 Rank", "投标人 Bidder", "总分或评标价 Total or evaluated price"], rows,
                      _scaled([0.6, 4, 1.6]))]


def _candidates(kit: Kit, lot: Mapping[str, Any]) -> list[Any]:
    rows = [[c.get("rank") if c.get("rank") is not None else "-", c.get("bidder"), c.get("price"), c.get("note")]
            for c in lot.get("candidates") or []]
    parts: list[Any] = [kit.table(["名次 Rank", "中标候选人 Candidate", "投标报价 Price", "说明 Note"], rows,
                                  _scaled([0.6, 2.6, 1.2, 2.6])) if rows else kit.none()]
    parts.append(kit.p("签订合同前要处理的事宜 Matters to settle before the contract", kit.h2))
    parts += _lines(kit, lot.get("matters") or [])
    return parts


def _clarifications(kit: Kit, data: Mapping[str, Any]) -> list[Any]:
    rows = [[c.get("bidder"), c.get("question"), c.get("answer"),
             f"{when(c.get('asked_at'))}\n{when(c.get('answered_at'))}", c.get("status")]
            for c in data.get("clarifications") or []]
    if not rows:
        return [kit.none()]
    return [kit.table(["投标人 Bidder", "问题 Question", "答复 Answer", "提出/答复 Asked/answered", "状态 Status"], rows,
                      _scaled([1.4, 2.6, 2.6, 1.2, 0.8]))]


def _summary(kit: Kit, data: Mapping[str, Any]) -> list[Any]:
    parts: list[Any] = [kit.p("评标委员会意见 Summary", kit.h2), kit.p(data.get("summary") or NONE),
                        kit.p("争议事项及表决 Disputed points and votes", kit.h2)]
    disputes = data.get("disputes") or []
    if not disputes:
        parts.append(kit.none())
    for i, d in enumerate(disputes, start=1):
        parts.append(kit.p(f"{i}. {d.get('bidder') or '-'} / {d.get('criterion') or '-'}: {d.get('reason') or '-'}"
                           f"\n表决结果 Outcome: {d.get('outcome') or '-'}", kit.base))
        votes = [[v.get("member"), v.get("vote"), v.get("reason")] for v in d.get("votes") or []]
        if votes:
            parts.append(kit.table(["成员 Member", "表决 Vote", "理由 Reason (不同意见 dissent)"], votes,
                                   _scaled([1.2, 1, 5])))
    parts.append(kit.p("书面不同意见 Written dissent", kit.h2))
    dissents = data.get("dissents") or []
    if not dissents:
        parts.append(kit.none())
    parts += [kit.p(f"{d.get('member') or '-'}: {d.get('text') or '-'}") for d in dissents]
    return parts


def _signature_pages(kit: Kit, data: Mapping[str, Any],
                     placements: dict[str, tuple[int, tuple[int, int, int, int]]]) -> list[Any]:
    chinese, english = SIGNATURE_HEADING
    parts: list[Any] = [PageBreak(), kit.p(f"{chinese} / {english}", kit.h1),
                        kit.p("评标委员会成员在本人姓名旁的签名栏内以电子签名（PAdES）签署本报告。对评标结果有不同意见的成员应在上文"
                              "书面说明不同意见和理由；拒绝签署且不陈述理由的，视为同意评标结果。Each member signs this report "
                              "with an electronic signature (PAdES) in the field beside their name. A member who "
                              "disagrees states the dissent and reasons in writing above; refusing to sign without "
                              "written reasons counts as agreeing with the result.", kit.small), Spacer(1, 6)]
    widths = [90, 150, 150, FRAME_WIDTH - 390]
    head = ["签名栏 Field", "姓名 Name", "职责 Role", "签名 Signature"]
    rows: list[list[Any]] = [[kit.c(h, w, kit.small) for h, w in zip(head, widths, strict=True)]]
    for m in data["members"]:
        rows.append([m["field"], kit.c(m.get("name"), widths[1]), kit.c(m.get("role"), widths[2]),
                     _SignatureBox(m["field"], placements)])
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), kit.font), ("FONTSIZE", (0, 0), (-1, -1), 9),
                               ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)),
                               ("VALIGN", (0, 1), (-1, -1), "MIDDLE"),
                               ("TOPPADDING", (0, 1), (-1, -1), 6), ("BOTTOMPADDING", (0, 1), (-1, -1), 6)]))
    parts.append(table)
    return parts


def story(data: Mapping[str, Any], font: str,
          placements: dict[str, tuple[int, tuple[int, int, int, int]]]) -> list[Any]:
    """The flowables of the report, signature pages last; ``placements`` is filled while it is drawn."""
    kit = Kit(font)
    t = data["tender"]
    makers = (
        lambda: _basics(kit, data),
        lambda: _members(kit, data),
        lambda: _opening(kit, data),
        lambda: _per_lot(kit, data, lambda lot: _qualified(kit, lot)),
        lambda: _per_lot(kit, data, lambda lot: _rejected(kit, lot)),
        lambda: _criteria(kit, data),
        lambda: _per_lot(kit, data, lambda lot: _compared(kit, data, lot)),
        lambda: _per_lot(kit, data, lambda lot: _ranking(kit, lot)),
        lambda: _per_lot(kit, data, lambda lot: _candidates(kit, lot)),
        lambda: _clarifications(kit, data),
    )
    parts: list[Any] = [kit.p("评标报告 Evaluation report", kit.title),
                        kit.p(f"{t.get('code')} {t.get('title') or ''}", ParagraphStyle("sub", parent=kit.base,
                                                                                       alignment=1)),
                        Spacer(1, 6)]
    for index, make in enumerate(makers):
        parts.append(kit.p(heading(index), kit.h1))
        parts += make()
    parts.append(kit.p(f"{SUMMARY_HEADING[0]} / {SUMMARY_HEADING[1]}", kit.h1))
    parts += _summary(kit, data)
    parts += _signature_pages(kit, data, placements)
    return parts


# --------------------------------------------------------------------------------- output

class _FixedWriter(IncrementalPdfFileWriter):
    """An incremental writer whose output depends only on its input: the new document ID half is derived
    from the input bytes and the document info keeps reportlab's dates (no "now")."""

    @classmethod
    def _handle_id(cls, prev: Any) -> generic.ArrayObject:
        ids = super()._handle_id(prev)
        prev.stream.seek(0)
        digest = hashlib.sha256(prev.stream.read()).digest()[:16]
        return generic.ArrayObject([ids[0], generic.ByteStringObject(digest)])

    def _update_meta(self) -> None:
        return None


def add_signature_fields(pdf: bytes, placements: Mapping[str, tuple[int, tuple[int, int, int, int]]]) -> bytes:
    """Add empty signature fields (name -> (page index, box)) as one incremental update, reproducibly."""
    return core_add_signature_fields(pdf, placements, writer_class=_FixedWriter)


def render_report(data: Mapping[str, Any]) -> tuple[bytes, dict[str, tuple[int, tuple[int, int, int, int]]]]:
    """The report as reportlab sets it, and where each member's signature box landed (page index, box)."""
    _check(data)
    font = register_cjk_font()
    t = data["tender"]
    report_at = t.get("report_at")
    created = datetime.fromisoformat(report_at) if isinstance(report_at, str) else report_at
    canvas_class = type("ReportCanvas", (NumberedCanvas,),
                        {"created": created, "header_text": f"{t['code']}  {t.get('title') or ''}"})
    placements: dict[str, tuple[int, tuple[int, int, int, int]]] = {}
    out = io.BytesIO()
    template = SimpleDocTemplate(out, pagesize=PAGE, leftMargin=MARGIN_X, rightMargin=MARGIN_X,
                                 topMargin=MARGIN_TOP, bottomMargin=MARGIN_BOTTOM, title=f"评标报告 {t['code']}",
                                 author="ebid", subject="Evaluation report", creator="ebid", invariant=1,
                                 initialFontName=font, initialFontSize=9)
    template.build(story(data, font, placements), canvasmaker=canvas_class)
    missing = [f for f in signature_fields(data) if f not in placements]
    if missing:  # every box is drawn by construction; this guards the layout, not the input
        raise RuntimeError(f"signature boxes not placed: {missing}")
    ordered = {f: placements[f] for f in signature_fields(data)}
    return out.getvalue(), ordered


def build_report(data: Mapping[str, Any]) -> bytes:
    """The report PDF with one empty signature field per committee member on the signature page(s)."""
    pdf, placements = render_report(data)
    return add_signature_fields(pdf, placements)
