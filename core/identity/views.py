"""Login, logout and account pages (blueprint ``identity``) and the login API (blueprint ``identity_api``)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user

from core.audit import record
from core.clock import beijing, now
from core.db import db
from core.errors import NotFound, ValidationFailed
from core.extensions import csrf, limiter
from core.identity.access import actor_for, current_actor, source_address
from core.identity.forms import ApiTokenForm, ConfirmForm, LoginForm
from core.identity.models import ApiToken, Person, Role
from core.identity.providers import AuthenticationFailed, get_provider
from core.identity.tokens import issue_api_token, revoke_api_token

bp = Blueprint("identity", __name__)
api = Blueprint("identity_api", __name__, url_prefix="/api/auth")

ROLE_LABELS = {
    Role.BIDDER: _l("Bidder"), Role.TENDERER: _l("Tenderer staff"), Role.AGENCY: _l("Agency staff"),
    Role.EXPERT: _l("Evaluation expert"), Role.SUPERVISOR: _l("Supervisor"), Role.CUSTODIAN: _l("Key custodian"),
    Role.ISSUER: _l("Guarantee issuer staff"), Role.ADMIN: _l("Platform administrator"),
}
LOGIN_LIMIT = "5 per minute"
AUTH_API_LIMIT = "10 per minute"


def limits_off() -> bool:
    """Rate limits are skipped while ``RATELIMIT_ENABLED`` is false (read per request, so tests can flip it)."""
    return not current_app.config.get("RATELIMIT_ENABLED", True)


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a path on this site, else None (no open redirects)."""
    target = (target or "").strip()
    if not target.startswith("/") or target.startswith("//") or any(c in target for c in "\\\r\n\t"):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, key_func=source_address, methods=["POST"], exempt_when=limits_off)
def login():
    form = LoginForm()
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next(request.args.get("next")) or url_for("identity.account"))
        form.next.data = request.args.get("next", "")
    error = None
    if form.validate_on_submit():
        try:
            assertion = get_provider("password").complete(email=form.email.data, password=form.password.data,
                                                          source=source_address())
        except AuthenticationFailed as exc:
            db.session.commit()  # the refused attempt stays on the audit trail
            error = exc.message
        else:
            person = db.session.get(Person, assertion.person_id)
            db.session.commit()
            session.clear()
            login_user(person)
            return redirect(safe_next(form.next.data) or url_for("identity.account"))
    form.password.data = ""
    return render_template("identity/login.html", form=form, error=error)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "GET":
        return render_template("identity/logout.html", form=ConfirmForm())
    if current_user.is_authenticated:
        record(current_actor(), "logout", "person", current_user.id, {})
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("identity.login"))


def beijing_text(value) -> str:
    """A time for display, in Beijing time (北京时间)."""
    return beijing(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def _render_account(token_form: ApiTokenForm | None = None, new_token: str | None = None, status: int = 200):
    person = current_user._get_current_object()
    response = current_app.make_response((render_template(
        "identity/account.html", person=person, token_form=token_form or ApiTokenForm(), confirm_form=ConfirmForm(),
        tokens=list(reversed(person.api_tokens)), new_token=new_token, at=now(), bj=beijing_text,
        role_labels=ROLE_LABELS), status))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account")
@login_required
def account():
    return _render_account()


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token():
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _render_account(token_form=form, status=422)
    days = form.expires_in_days.data
    token, plaintext = issue_api_token(current_actor(), current_user._get_current_object(), form.name.data,
                                       expires_at=now() + timedelta(days=days) if days else None)
    db.session.commit()
    # Shown in this response only: never flashed (the session cookie is signed, not encrypted) nor stored.
    return _render_account(token_form=ApiTokenForm(formdata=None), new_token=plaintext, status=201)


def _own_token(token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.person_id != current_user.id:
        raise NotFound()
    return token


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    token = revoke_api_token(current_actor(), _own_token(token_id))
    db.session.commit()
    flash(_("The token %(name)s was revoked.", name=token.name), "info")
    return redirect(url_for("identity.account"))


# ---- JSON API -----------------------------------------------------------------------------------------
# The two login endpoints are exempt from CSRF: they read no session cookie and set none (they answer with
# a bearer token), so a forged cross-site request gains nothing.


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed(_("Send a JSON object in the request body."))
    return body


@api.post("/challenge")
@csrf.exempt
@limiter.limit(AUTH_API_LIMIT, key_func=source_address, exempt_when=limits_off)
def challenge():
    provider = get_provider(str(_json_body().get("provider", "certificate")))
    result = provider.begin(source=source_address())
    db.session.commit()
    return jsonify({"provider": result.provider, "nonce": result.nonce,
                    "expires_at": result.expires_at.isoformat() if result.expires_at else None, **result.data}), 201


@api.post("/certificate")
@csrf.exempt
@limiter.limit(AUTH_API_LIMIT, key_func=source_address, exempt_when=limits_off)
def certificate_login():
    body = _json_body()
    try:
        assertion = get_provider("certificate").complete(
            source=source_address(), nonce=str(body.get("nonce", "")), certificate=str(body.get("certificate", "")),
            signature=str(body.get("signature", "")))
    except AuthenticationFailed:
        db.session.commit()  # the used nonce and the refused attempt stay recorded
        raise
    person = db.session.get(Person, assertion.person_id)
    minutes = int(current_app.config.get("EBID_CERT_LOGIN_TOKEN_MINUTES", 60))
    token, plaintext = issue_api_token(
        actor_for(person, source=source_address()), person,
        f"certificate login {assertion.evidence['certificate_serial'][:16]}",
        expires_at=now() + timedelta(minutes=minutes))
    db.session.commit()
    return jsonify({"token": plaintext, "token_type": "Bearer", "expires_at": token.expires_at.isoformat(),
                    "person": {"id": person.id, "name": person.name, "email": person.email},
                    "organisation_uscc": assertion.organisation_uscc}), 201


@api.get("/me")
@login_required
def me():
    person = current_user._get_current_object()
    return jsonify({"id": person.id, "name": person.name, "email": person.email,
                    "authenticated_by": "token" if g.get("api_token") else "session",
                    "roles": [{"role": grant.role.value,
                               "organisation_uscc": grant.organisation.uscc if grant.organisation else None}
                              for grant in person.grants]})


@api.post("/tokens/<int:token_id>/revoke")
@login_required
def api_revoke_token(token_id: int):
    token = revoke_api_token(current_actor(), _own_token(token_id))
    db.session.commit()
    return jsonify({"id": token.id, "prefix": token.prefix, "revoked_at": token.revoked_at.isoformat()})

