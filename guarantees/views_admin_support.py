"""What the issuer administration pages share: who may use them, reading the forms, the page contexts.

Reading a form only turns text into the types the services take (a PEM from an upload or a textarea,
whole numbers of days, a Beijing time); every domain rule stays in :mod:`guarantees.services` and
:mod:`guarantees.issuer_admin`, whose refusals name the field to correct.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

from flask import flash, redirect, request
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from core.actor import Actor
from core.clock import BEIJING, now
from core.db import db
from core.errors import NotFound, ValidationFailed
from core.forms import commit_form
from core.identity.access import current_actor
from core.identity.models import Role
from guarantees import policy_in_force
from guarantees.errors import AdminRequired
from guarantees.issuer_admin import issuer_row, issuer_rows, person_names, rate_policies
from guarantees.models import GuaranteeProduct, Issuer, IssuerKind
from guarantees.views_support import person

T = TypeVar("T")

MAX_PEM_BYTES = 64 * 1024

ADMIN_FIELD_LABELS = {
    "uscc": _l("Unified social credit code"), "name": _l("Name"), "code": _l("Code"), "kind": _l("Kind"),
    "organisation": _l("Organisation"), "api_base_url": _l("API address"),
    "message_cert_pem": _l("Message certificate"), "letter_trust_root_pem": _l("Letter trust root"),
    "reason": _l("Reason"), "rate_permille": _l("Rate (‰)"), "minimum_fee": _l("Minimum fee (CNY)"),
    "maximum_fee": _l("Maximum fee (CNY)"), "extra_validity_days": _l("Extra validity (days)"),
    "claim_answer_days": _l("Days to answer a claim"), "effective_from": _l("Takes effect"),
    "cap_permille": _l("Rate cap (‰)"), "reference_permille": _l("Reference rate (‰)"),
}


def _refuse(field: str, message: Any) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


# -- who may use the pages ------------------------------------------------------------------------

def admin_actor() -> Actor:
    """The platform administrator acting (401 when logged out, 403 for anyone else)."""
    if not person().has_role(Role.ADMIN):
        raise AdminRequired()
    return current_actor(Role.ADMIN)


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Log in first (the login page for people), then administrators only (403 for anyone else)."""
    @wraps(view)
    @login_required
    def checked(*args: Any, **kwargs: Any) -> Any:
        admin_actor()
        return view(*args, **kwargs)
    return checked


def get_issuer(issuer_id: int) -> Issuer:
    issuer = db.session.get(Issuer, issuer_id)
    if issuer is None:
        raise NotFound(_l("There is no such issuer; pick one from the list of issuers."))
    return issuer


def get_product(product_id: int) -> GuaranteeProduct:
    product = db.session.get(GuaranteeProduct, product_id)
    if product is None:
        raise NotFound(_l("There is no such product; pick one on its issuer's page."))
    return product


# -- reading the forms ----------------------------------------------------------------------------

def text(name: str) -> str:
    return request.form.get(name, "")


def pem_input(field: str, *, required: bool = False) -> str:
    """A PEM pasted in ``field`` or uploaded as ``<field>_file`` (the file wins); '' when neither is given."""
    upload = request.files.get(f"{field}_file")
    if upload is not None and upload.filename:
        data = upload.stream.read(MAX_PEM_BYTES + 1)
        if len(data) > MAX_PEM_BYTES:
            raise _refuse(field, _l("The file is larger than 64 KB; a PEM certificate is much smaller."))
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            raise _refuse(field, _l("The file is not a PEM text file; upload the certificate in PEM form "
                                    "(-----BEGIN CERTIFICATE-----).")) from None
    pasted = text(field)
    if required and not pasted.strip():
        raise _refuse(field, _l("Paste the certificate in PEM form or choose its file."))
    return pasted


def days_input(field: str, default: int) -> int:
    """A whole number of days (empty: ``default``)."""
    raw = text(field).strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _refuse(field, _l("Enter a whole number of days.")) from None


def when_input(field: str = "effective_from") -> datetime | None:
    """A ``datetime-local`` value in Beijing time as aware UTC; empty means now (None)."""
    raw = text(field).strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _refuse(field, _l("Enter the date and time as YYYY-MM-DD HH:MM (Beijing time), or leave it empty "
                                "for now.")) from None
    return (value if value.tzinfo else value.replace(tzinfo=BEIJING)).astimezone(UTC)


def form_values() -> dict[str, str]:
    """What was typed, to fill the form again after a refusal (never the CSRF token)."""
    return {k: v for k, v in request.form.items() if k != "csrf_token"}


# -- one form submission --------------------------------------------------------------------------

def submit(form: str, action: Callable[[Actor], T], *, page: Callable[..., str],
           done: Callable[[T], tuple[str, str]]):
    """Run ``action`` as the administrator and commit, then flash and redirect to ``done``'s target.

    A refusal rolls everything back and renders ``page`` again with the message next to the form;
    access refusals go to the error page.
    """
    actor = admin_actor()
    result, refused = commit_form(lambda: action(actor))
    if refused is not None:
        message, fields, status = refused
        return page(error_for=form, error=message, errors=fields, values=form_values()), status
    message, target = done(result)
    flash(message, "success")
    return redirect(target)


# -- page contexts --------------------------------------------------------------------------------

def _form_state(extra: dict[str, Any]) -> dict[str, Any]:
    state = {"error_for": None, "error": None, "errors": {}, "values": {}, "labels": ADMIN_FIELD_LABELS,
             "kinds": list(IssuerKind), "now": now()}
    state.update(extra)
    return state


def list_context(**extra: Any) -> dict[str, Any]:
    """The issuer list: every issuer with its certificate and products, the policy in force and its history."""
    policies = rate_policies()
    return _form_state({"rows": issuer_rows(), "policy": policy_in_force(), "policies": policies,
                        "names": person_names(p.created_by_id for p in policies), **extra})


def detail_context(issuer: Issuer, **extra: Any) -> dict[str, Any]:
    """One issuer: its products with every rate version, its certificate versions, who made each."""
    ids = [v.created_by_id for v in issuer.certificates]
    ids += [r.created_by_id for p in issuer.products for r in p.rates]
    return _form_state({"issuer": issuer, "row": issuer_row(issuer), "policy": policy_in_force(),
                        "names": person_names(ids), **extra})


__all__ = ["ADMIN_FIELD_LABELS", "admin_actor", "admin_required", "days_input", "detail_context", "form_values", "get_issuer",
           "get_product", "list_context", "pem_input", "submit", "text", "when_input"]
