"""JSON API of the evaluation report (评标报告), blueprint ``results_api`` under ``/api/evaluation``.

Thin views over :mod:`evaluation.report`: members fetch the current revision and upload their signed
one (``ebid client report sign`` does both); the report's verification verdict is read by the members,
the tender's managers and the supervisors. The contract is docs/evaluation-report.md.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest import Blueprint

from core.db import db
from core.errors import Forbidden, NotAuthenticated, ValidationFailed
from core.identity.access import current_actor
from evaluation import report as reports
from evaluation.result_models import EvaluationReport, ReportStatus
from evaluation.room_state import is_supervisor_of

blp = Blueprint("results_api", __name__, url_prefix="/api/evaluation",
                description="The evaluation report (评标报告): revisions to sign, signatures, verification")


def _person() -> Any:
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return current_user


def may_read(report: EvaluationReport, person: Any) -> bool:
    """Members, the tender's managers (once signed) and supervisors read the report."""
    if reports.field_of_person(report, person.id) is not None or is_supervisor_of(person.id, report.tender_id):
        return True
    tender = report.tender
    managed = {g.organisation_id for g in person.grants if g.organisation_id}
    return report.status == ReportStatus.SIGNED and bool(managed & {tender.tenderer_id, tender.agency_id})


def readable_report(tender_id: int) -> EvaluationReport:
    person = _person()
    report = reports.require_report(tender_id)
    if not may_read(report, person):
        raise Forbidden(_l("The evaluation report is read by the committee, the supervisors and, once every member "
                           "signed it, the tender's tenderer and agency."), code="report_not_yours")
    return report


def verdict_view(report: EvaluationReport) -> dict[str, Any]:
    result = reports.verdict(report)
    return {"status": result.status, "problems": list(result.problems),
            "signatures": [{"field": s.field, "member": s.member, "state": s.state, "signer": s.signer_subject,
                            "signed_at": s.signed_at.isoformat() if s.signed_at else None, "reason": s.reason}
                           for s in result.signatures]}


def report_view(report: EvaluationReport, person_id: int | None) -> dict[str, Any]:
    mine = reports.field_of_person(report, person_id)
    signed = {s.field: s.signed_at.isoformat() for s in report.signatures}
    return {"tender_id": report.tender_id, "status": report.status.value, "pdf_sha256": report.pdf_sha256,
            "size": report.pdf_size, "my_field": mine["field"] if mine else None,
            "fields": [{"field": f["field"], "name": f["name"], "signed_at": signed.get(f["field"])}
                       for f in report.fields]}


@blp.route("/tenders/<int:tender_id>/report")
class Report(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The report's state: status, fields with who signed when, the field you sign."""
        return report_view(readable_report(tender_id), current_user.id)


@blp.route("/tenders/<int:tender_id>/report/revision")
class Revision(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The current revision to sign: ``{"sha256", "size", "pdf" (base64), "my_field", "status"}``."""
        report = readable_report(tender_id)
        pdf = reports.current_pdf(report)
        return {**report_view(report, current_user.id), "sha256": report.pdf_sha256,
                "pdf": base64.b64encode(pdf).decode()}

    @blp.response(200)
    def post(self, tender_id: int):
        """Upload your signed revision: ``{"pdf": base64}`` (a member, own field only)."""
        _person()
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ValidationFailed(_l("Send a JSON object."), code="json_required")
        try:
            pdf = base64.b64decode(str(data.get("pdf") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(_l("pdf must be base64."), code="invalid_base64") from None
        report = reports.accept_signature(current_actor(), tender_id, pdf)
        db.session.commit()
        return report_view(report, current_user.id)


@blp.route("/tenders/<int:tender_id>/report/verification")
class Verification(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """Every signature checked now against the platform CA: ``final`` | ``incomplete`` | ``invalid``."""
        return verdict_view(readable_report(tender_id))


@blp.route("/tenders/<int:tender_id>/report.pdf")
class Download(MethodView):
    def get(self, tender_id: int):
        """The current revision as a PDF file."""
        report = readable_report(tender_id)
        return Response(reports.current_pdf(report), mimetype="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="evaluation-report-{report.tender.code}.pdf"'})
