"""Open data over HTTP: OCDS 1.1 release packages of published tenders, for anyone, no login.

``GET /api/ocds/tenders/<id>`` gives the package of one published tender, ``GET /api/ocds/releases`` the
package of all of them. :func:`export_package` is shared with the ``ebid export ocds`` command, so the API
and the CLI publish byte-for-byte the same JSON.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask_babel import lazy_gettext as _l
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bidding.models import Amendment, Tender, TenderStatus
from bidding.ocds import build_release_package, to_json
from core.clock import now
from core.config import Settings
from core.db import db
from core.errors import NotFound

bp = Blueprint("ocds", __name__, url_prefix="/api/ocds",
               description="Open data (开放数据): OCDS 1.1 release packages of published tenders, no login")


def public_tenders(*, tender_id: int | None = None) -> list[Tender]:
    """Return the published tenders (never drafts), oldest first, with what a release needs loaded."""
    stmt = (select(Tender)
            .where(Tender.status != TenderStatus.DRAFT, Tender.published_at.is_not(None),
                   Tender.published_at <= now())
            .options(selectinload(Tender.lots), selectinload(Tender.documents),
                     selectinload(Tender.amendments).selectinload(Amendment.documents),
                     selectinload(Tender.tenderer), selectinload(Tender.agency))
            .order_by(Tender.id)
            # the export shows what is stored, even to a session that already holds these objects
            .execution_options(populate_existing=True))
    if tender_id is not None:
        stmt = stmt.where(Tender.id == tender_id)
    return list(db.session.scalars(stmt))


def package_uri(settings: Settings, tender_id: int | None = None) -> str:
    """Return the URL where the package is published (the package's ``uri``)."""
    base = settings.public_base_url.rstrip("/")
    return f"{base}/api/ocds/tenders/{tender_id}" if tender_id is not None else f"{base}/api/ocds/releases"


def export_package(settings: Settings, *, tender_id: int | None = None) -> dict[str, Any]:
    """Return the release package of one published tender, or of all; NotFound when there is none."""
    tenders = public_tenders(tender_id=tender_id)
    if not tenders:
        if tender_id is not None:
            raise NotFound(_l("No published tender has this id."), code="tender_not_found")
        raise NotFound(_l("No tender has been published yet."), code="no_published_tender")
    return build_release_package(tenders, ocid_prefix=settings.ocid_prefix,
                                 base_url=settings.public_base_url, publisher_name=settings.publisher_name,
                                 uri=package_uri(settings, tender_id))


def _settings() -> Settings:
    return current_app.extensions["ebid.settings"]


def _package_response(package: dict[str, Any]) -> Response:
    response = Response(to_json(package), mimetype="application/json")
    response.headers["Access-Control-Allow-Origin"] = "*"  # public open data, no credentials involved
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/tenders/<int:tender_id>")
@bp.response(200, description="An OCDS 1.1 release package with the tender's release")
@bp.alt_response(404, description="No published tender has this id (drafts are never exported)")
def tender_package(tender_id: int) -> Response:
    """The release package of one published tender."""
    return _package_response(export_package(_settings(), tender_id=tender_id))


@bp.get("/releases")
@bp.response(200, description="An OCDS 1.1 release package with one release per published tender")
@bp.alt_response(404, description="No tender has been published yet")
def all_releases() -> Response:
    """The release package of every published tender."""
    return _package_response(export_package(_settings()))
