"""Tender pages (HTML): public list and detail, the home page; the tenderer's and bidder's pages are in
:mod:`bidding.views_manage` and :mod:`bidding.views_bidder`, on the same ``tenders`` blueprint."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request

from bidding import views_bidder, views_bids, views_manage, views_opening  # noqa: F401  (their routes join the blueprint)
from bidding.models import Regime, TenderStatus
from bidding.queries import get_tender, search_tenders
from bidding.view_support import bp, detail_context, int_arg, viewer_orgs

PER_PAGE = 20
PUBLIC_STATUSES = [s for s in TenderStatus if s != TenderStatus.DRAFT]


def home():
    """Home page (首页): the latest published tenders and the ways in."""
    latest = search_tenders(status=TenderStatus.PUBLISHED.value, per_page=8)
    return render_template("bidding/home.html", latest=latest.items, open_count=latest.total)


@bp.route("/tenders")
def tender_list():
    """Public list of tenders (招标公告) with search, filters and pagination."""
    args = request.args
    text = (args.get("q") or "").strip()
    regime = args.get("regime") if args.get("regime") in {r.value for r in Regime} else None
    status = args.get("status") if args.get("status") in {s.value for s in PUBLIC_STATUSES} else None
    region = (args.get("region") or "").strip()[:12] or None
    page = search_tenders(text=text or None, regime=regime, status=status, region=region,
                          page=int_arg(args.get("page")) or 1, per_page=PER_PAGE)
    filters = {k: v for k, v in (("q", text), ("regime", regime), ("status", status), ("region", region)) if v}
    return render_template("bidding/list.html", page=page, filters=filters, regimes=list(Regime),
                           statuses=PUBLIC_STATUSES)


@bp.route("/tenders/<int:tender_id>")
def detail(tender_id: int):
    """A tender's public notice: lots, periods in Beijing time, countdown, documents, Q&A, objections."""
    tender = get_tender(tender_id, viewer_orgs())
    return render_template("bidding/detail.html", **detail_context(tender))


def register(app: Flask) -> None:
    """Attach the tender pages and the home page (``url_for('home')``) to ``app``."""
    app.register_blueprint(bp)
    app.add_url_rule("/", "home", home)
    app.jinja_env.globals.setdefault("current_app", current_app)  # templates ask which endpoints exist


__all__ = ["bp", "register"]
