"""Registration of blueprints, API, error handlers, CLI commands, realtime and tasks."""

from __future__ import annotations

from flask import Flask

import bidding
import bidding.opening_tasks  # noqa: F401  (opening engine: advances openings every 5 s)
import bidding.retender  # noqa: F401  (re-tender: tells the tenderer and agency when lots fail at the deadline)
import bidding.tasks  # noqa: F401  (registers the deadline-closing task and its 10 s schedule)
import core.audit  # noqa: F401
import core.notifications  # noqa: F401
import evaluation  # noqa: F401  (registers the evaluation models)
import guarantees.tasks  # noqa: F401  (registers the guarantee tasks and their schedule with Celery)
import supervision.models  # noqa: F401  (registers the supervision models)
import supervision.screening  # noqa: F401  (screens run when an opening closes; their sweep task)
from bidding.api import blp as tenders_api
from bidding.bids_api import blp as bids_api
from bidding.hall import register_hall
from bidding.ocds_api import bp as ocds_bp
from bidding.opening_api import blp as opening_api
from bidding.record_api import blp as record_api
from bidding.tasks import close_due_on_request
from bidding.views import register as register_tender_pages
from core.audit_views import bp as audit_bp
from core.config import Settings
from core.identity.web import init_app as init_identity
from core.realtime import init_realtime
from core.tasks import init_celery
from ebid import errors as error_pages
from ebid.cli_commands import register_cli
from evaluation.results_api import blp as results_api
from evaluation.room_socket import register_room
from evaluation.views_draw import register as register_draw_pages
from evaluation.views_results import register as register_result_pages
from evaluation.views_room import register as register_room_pages
from guarantees.api import blp as guarantees_api
from guarantees.api import exempt_from_csrf as exempt_guarantee_callbacks
from guarantees.views import register as register_guarantee_pages
from supervision.feed import register_feed
from supervision.views import register as register_supervision_pages
from supervision.views_stats import register as register_statistics_pages


def register(app: Flask, settings: Settings) -> None:
    """Attach every domain's doors (views, API, sockets, tasks) to ``app``."""
    error_pages.register(app)
    register_cli(app)
    init_identity(app)
    socketio = init_realtime(app, settings)
    register_hall(socketio)  # the opening hall's /hall namespace
    register_room(socketio)  # the scoring room's /room namespace
    register_feed(socketio)  # the supervisors' live feed: /supervision
    init_celery(app, settings)
    app.register_blueprint(audit_bp)
    register_tender_pages(app)
    bidding.init_app(app, settings.extra.get("rule_overrides"))
    api = error_pages.make_api(app)
    api.register_blueprint(tenders_api, name="tenders_api")  # "tenders" is the HTML pages' blueprint
    api.register_blueprint(ocds_bp)
    api.register_blueprint(bids_api, name="bids_api")
    api.register_blueprint(opening_api, name="opening_api")  # online opening engine
    api.register_blueprint(record_api, name="record_api")  # the opening record
    app.before_request(close_due_on_request)  # deadlines close on every request, not only when beat runs
    api.register_blueprint(guarantees_api, name="guarantees_api")
    exempt_guarantee_callbacks()
    register_guarantee_pages(app)
    register_room_pages(app)  # the scoring room and the bidders' clarification pages
    register_draw_pages(app)  # the expert pool, the draw, invitations and sign-in
    api.register_blueprint(results_api, name="results_api")  # the evaluation report's revisions and signatures
    register_result_pages(app)  # results, decisions, report signing, publicity, award, explanations
    register_supervision_pages(app)  # the console, a tender's supervision, complaints
    register_statistics_pages(app)  # the statistics dashboard with charts and CSV
