"""The price-score explanation annex (报价得分计算说明) for one bid, as a PDF.

Pure: a dict in, bytes out, the same bytes for the same dict. It shows how one bidder's price score
was reached, step by step (benchmark price, deviation, score), with the texts and numbers already
substituted by the caller; the shipped CJK font is embedded.

Input::

    {"tender": {"code", "title"}, "lot": str | {"code", "title"}, "bidder": str,
     "price": str,                                                                # a decimal string
     "steps": [{"title", "formula", "result"}],                                   # in the order computed
     "note": str | None, "generated_at": ISO datetime | None}                     # the date in the PDF info
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from reportlab.lib.pagesizes import A4
from reportlab.platypus import SimpleDocTemplate, Spacer, TableStyle

from core.errors import ValidationFailed
from core.pdf import register_cjk_font
from evaluation.report_pdf import NONE, Kit, NumberedCanvas

PAGE = A4
MARGIN_X = 42
TITLE = "报价得分计算说明 Price score explanation"


def _lot(lot: Any) -> str:
    if isinstance(lot, Mapping):
        return f"{lot.get('code') or '-'} {lot.get('title') or ''}".strip()
    return str(lot) if lot else "-"


def build_explanation(data: Mapping[str, Any]) -> bytes:
    """The annex for one bid: header lines, the table of steps, the note."""
    tender = data.get("tender") or {}
    if not tender.get("code"):
        raise ValidationFailed(_l("The explanation has no tender code; give the tender's code."), code="no_tender")
    font = register_cjk_font()
    kit = Kit(font)
    width = PAGE[0] - 2 * MARGIN_X
    created = data.get("generated_at")
    canvas_class = type("AnnexCanvas", (NumberedCanvas,), {
        "created": datetime.fromisoformat(created) if isinstance(created, str) else created,
        "header_text": f"{tender['code']}  {tender.get('title') or ''}", "title_text": TITLE,
        "page_size": PAGE, "margin_x": MARGIN_X})
    parts: list[Any] = [
        kit.p(TITLE, kit.title), Spacer(1, 4),
        kit.p(f"项目 Tender: {tender['code']} {tender.get('title') or ''}"),
        kit.p(f"标段 Lot: {_lot(data.get('lot'))}"),
        kit.p(f"投标人 Bidder: {data.get('bidder') or '-'}"),
        kit.p(f"投标报价 Price: {data.get('price') or '-'}"),
        kit.p("计算步骤 Steps", kit.h2),
    ]
    steps = data.get("steps") or []
    if steps:
        widths = [width * 0.06, width * 0.26, width * 0.48, width * 0.20]
        rows = [[i, s.get("title"), s.get("formula"), s.get("result")] for i, s in enumerate(steps, start=1)]
        table = kit.table(["步骤 Step", "项目 Item", "公式 Formula", "结果 Result"], rows, widths)
        table.setStyle(TableStyle([("ALIGN", (3, 1), (3, -1), "RIGHT")]))
        parts.append(table)
    else:
        parts.append(kit.p(NONE))
    parts += [Spacer(1, 8), kit.p(f"说明 Note: {data.get('note') or NONE}", kit.small)]
    out = io.BytesIO()
    template = SimpleDocTemplate(out, pagesize=PAGE, leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=48,
                                 bottomMargin=42, title=f"报价得分计算说明 {tender['code']}", author="ebid",
                                 subject="Price score explanation", creator="ebid", invariant=1,
                                 initialFontName=font, initialFontSize=9)
    template.build(parts, canvasmaker=canvas_class)
    return out.getvalue()

