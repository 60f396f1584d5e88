"""One error shape everywhere: JSON ``{code, message, fields}`` for the API, a page for people."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from core.db import db
from core.errors import Conflict, DomainError


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(payload: dict, status: int):
    if wants_json():
        return jsonify(payload), status
    return render_template("error.html", error=payload, status=status), status


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        db.session.rollback()
        return error_response(exc.to_dict(), exc.status)

    @app.errorhandler(StaleDataError)
    def _stale(exc: StaleDataError):
        db.session.rollback()
        return _domain_error(Conflict())

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response({"code": "csrf_failed", "fields": {},
                               "message": _("The form expired or was not sent from this site; reload the page "
                                            "and submit it again.")}, 400)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        messages = {
            404: _("The page or item you asked for does not exist."),
            405: _("This action is not allowed here."),
            413: _("The file is too large."),
            429: _("Too many attempts; wait a minute and try again."),
        }
        payload = {"code": (exc.name or "error").lower().replace(" ", "_"),
                   "message": messages.get(exc.code or 500, exc.description or exc.name), "fields": {}}
        data = getattr(exc, "data", None)  # webargs/flask-smorest validation errors
        if data and "messages" in data:
            payload["code"] = "validation_failed"
            payload["message"] = _("Some fields are not valid; correct them and try again.")
            messages_ = data["messages"]
            fields = messages_.get("json") or messages_.get("query") or messages_.get("form") or messages_
            payload["fields"] = {k: v if isinstance(v, list) else [str(v)] for k, v in fields.items()}
        return error_response(payload, exc.code or 500)
