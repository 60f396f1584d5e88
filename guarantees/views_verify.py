"""Public letter verification (保函验真): by guarantee number and verification code, or by uploading the PDF.

Anyone may verify, without logging in; issuers print a link to this page on their letters
(``/guarantees/verify?no=...&code=...``). Every check is shown with pass or fail and its reason. For a
sealed letter (密文保函) not yet revealed, the tender and bidder stay hidden here too. Rate-limited per
address together with the API (:mod:`guarantees.limits`).
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask_babel import lazy_gettext as _l

from guarantees import verify_letter
from guarantees.limits import verification_limit
from guarantees.views_support import bp

MAX_LETTER_BYTES = 20 * 1024 * 1024
MAX_NUMBER_LENGTH = 64
MAX_CODE_LENGTH = 16


def _page(status: int = 200, **context: Any):
    values = {"report": None, "result": None, "error": None, "errors": {}, "values": {}, "error_for": None}
    values.update(context)
    return render_template("guarantees/verify.html", **values), status


def _refuse(form: str, field: str, message, values: dict[str, str]):
    text = str(message)
    return _page(422, error=str(_l("Nothing was verified; correct the form and try again.")),
                 errors={field: [text]}, error_for=form, values=values)


@bp.route("/guarantees/verify", methods=["GET"])
@verification_limit
def verify():
    """Verify by number and code (query ``no`` and ``code``; ``confirm=1`` also asks the issuer's registry)."""
    number = (request.args.get("no") or "").strip()
    code = (request.args.get("code") or "").strip()
    confirm = request.args.get("confirm") in ("1", "on", "true")
    values = {"no": number, "code": code, "confirm": "1" if confirm else ""}
    if not number and not code:
        return _page(values=values)
    if not number or len(number) > MAX_NUMBER_LENGTH:
        return _refuse("number", "no", _l("Enter the guarantee number printed on the letter."), values)
    if not code or len(code) > MAX_CODE_LENGTH:
        return _refuse("number", "code", _l("Enter the verification code (验真码) printed on the letter."), values)
    report = verify_letter(guarantee_no=number, code=code, confirm_with_issuer=confirm)
    return _page(report=report, result=report.to_dict(), values=values, error_for="number")


@bp.route("/guarantees/verify", methods=["POST"])
@verification_limit
def verify_upload():
    """Verify an uploaded letter PDF (multipart ``file``)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _refuse("file", "file", _l("Choose the letter's PDF file."), {})
    data = upload.stream.read(MAX_LETTER_BYTES + 1)
    if len(data) > MAX_LETTER_BYTES:
        return _refuse("file", "file", _l("The file is larger than 20 MB; a guarantee letter is much smaller."), {})
    if not data:
        return _refuse("file", "file", _l("The file is empty."), {})
    report = verify_letter(pdf_bytes=data)
    return _page(report=report, result=report.to_dict(), values={"filename": upload.filename}, error_for="file")
