"""One error shape everywhere: JSON ``{code, message, fields}`` for the API, a page for people."""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from marshmallow import Schema, fields
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


class ApiErrorSchema(Schema):
    """The one error shape of the API (documented on every operation)."""

    code = fields.String(required=True, metadata={"description": "Machine-readable reason"})
    message = fields.String(required=True, metadata={"description": "What went wrong and what to do"})
    field_messages = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), data_key="fields",
                                 metadata={"description": "Messages per field path, e.g. lots.0.title"})


class Api(flask_smorest.Api):
    """flask-smorest's Api, leaving errors to the house handlers below so they keep the one shape."""

    ERROR_SCHEMA = ApiErrorSchema

    def _register_error_handlers(self) -> None:
        return None


def make_api(app: Flask) -> Api:
    """The JSON API (OpenAPI document at /api/openapi.json); domains register their blueprints on it."""
    app.config.setdefault("API_TITLE", "ebid API")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = Api(app)
    app.extensions["ebid.api"] = api
    return api


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow messages (nested per location and field) as ``{"lots.0.title": [...]}``."""
    if isinstance(messages, dict):
        out: dict[str, list[str]] = {}
        for key, value in messages.items():
            out.update(flatten_messages(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": [str(m) for m in messages]}
    if isinstance(messages, list | tuple):
        out = {}
        for i, value in enumerate(messages):
            out.update(flatten_messages(value, f"{prefix}.{i}" if prefix else str(i)))
        return out
    return {prefix or "_schema": [str(messages)]}


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
            payload["fields"] = {}
            for per_location in data["messages"].values():  # {"json": {...}, "query": {...}, "files": {...}}
                payload["fields"].update(flatten_messages(per_location))
        return error_response(payload, exc.code or 500)
