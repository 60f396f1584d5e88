"""Issuer administration pages (出函机构管理) for platform administrators, under ``/guarantees/admin``.

* ``/guarantees/admin/issuers``: every issuer with its status, current certificate and products (rate in
  force, minimum and maximum fee), the rate cap (费率上限) in force with its history, and the form to set
  a new cap;
* ``/guarantees/admin/issuers/new``: admit an issuer (its organisation is registered if new);
* ``/guarantees/admin/issuers/<id>``: one issuer: every rate version of its products, every certificate
  version, and the forms to change its name or API address, rotate its certificates, suspend or admit
  it again, add a product, set a product's rate, withdraw or offer a product again.

Thin: each form calls one verb of :mod:`guarantees` (which validates and audits), then commits and
redirects; a refusal changes nothing and is shown beside the form (see :func:`views_admin_support.submit`).
"""

from __future__ import annotations

from flask import render_template, url_for
from flask_babel import gettext as _

from core.clock import beijing
from guarantees import (
    add_product,
    admit_new_issuer,
    change_issuer_details,
    set_issuer_admission,
    set_product_active,
    set_product_rate,
    set_rate_policy,
    update_issuer,
)
from guarantees.models import GuaranteeProduct
from guarantees.rates import permille_text
from guarantees.views_admin_support import (
    admin_required,
    days_input,
    detail_context,
    get_issuer,
    get_product,
    list_context,
    pem_input,
    submit,
    text,
    when_input,
)
from guarantees.views_support import bp


def _when(value) -> str:
    return beijing(value).strftime("%Y-%m-%d %H:%M")


def _list_page(**context) -> str:
    return render_template("guarantees/admin_issuers.html", **list_context(**context))


def _new_page(**context) -> str:
    return render_template("guarantees/admin_issuer_new.html", **list_context(**context))


def _detail_page(issuer_id: int):
    return lambda **context: render_template("guarantees/admin_issuer.html",
                                             **detail_context(get_issuer(issuer_id), **context))


def _detail_url(issuer_id: int, anchor: str = "") -> str:
    return url_for("guarantees.admin_issuer", issuer_id=issuer_id) + (f"#{anchor}" if anchor else "")


# -- pages ----------------------------------------------------------------------------------------

@bp.route("/guarantees/admin/issuers")
@admin_required
def admin_issuers():
    """Every issuer with its certificate and products, and the rate cap in force."""
    return _list_page()


@bp.route("/guarantees/admin/issuers/new")
@admin_required
def admin_issuer_new():
    """The form to admit an issuer."""
    return _new_page()


@bp.route("/guarantees/admin/issuers/<int:issuer_id>")
@admin_required
def admin_issuer(issuer_id: int):
    """One issuer: products with their rate history, certificate history, and the forms that change them."""
    return _detail_page(issuer_id)()


# -- forms ----------------------------------------------------------------------------------------

@bp.route("/guarantees/admin/issuers/new", methods=["POST"])
@admin_required
def admin_admit():
    """Admit an issuer with its message certificate and letter trust root (pasted or uploaded)."""
    def action(actor):
        return admit_new_issuer(actor, uscc=text("uscc"), name=text("name"), code=text("code"), kind=text("kind"),
                                api_base_url=text("api_base_url"),
                                message_cert_pem=pem_input("message_cert_pem", required=True),
                                letter_trust_root_pem=pem_input("letter_trust_root_pem", required=True))
    return submit("admit", action, page=_new_page, done=lambda issuer: (
        _("Issuer %(code)s (%(name)s) is admitted; its certificates are version 1.", code=issuer.code,
          name=issuer.name), _detail_url(issuer.id)))


@bp.route("/guarantees/admin/issuers/<int:issuer_id>/details", methods=["POST"])
@admin_required
def admin_issuer_details(issuer_id: int):
    """Change the issuer's name and/or API address (a new address is a new certificate version)."""
    issuer = get_issuer(issuer_id)
    return submit("details", lambda actor: change_issuer_details(
        actor, issuer, name=text("name"), api_base_url=text("api_base_url"), reason=text("reason")),
        page=_detail_page(issuer_id),
        done=lambda _changed: (_("The changes to %(code)s are saved.", code=issuer.code), _detail_url(issuer_id)))


@bp.route("/guarantees/admin/issuers/<int:issuer_id>/certificate", methods=["POST"])
@admin_required
def admin_rotate(issuer_id: int):
    """Rotate the issuer's message certificate and/or letter trust root (PEM pasted or uploaded)."""
    issuer = get_issuer(issuer_id)

    def action(actor):
        return update_issuer(actor, issuer, message_cert_pem=pem_input("message_cert_pem") or None,
                             letter_trust_root_pem=pem_input("letter_trust_root_pem") or None,
                             reason=text("reason"), compromised=text("compromised") in ("1", "on", "true"))
    return submit("certificate", action, page=_detail_page(issuer_id), done=lambda version: (
        _("Certificate version %(version)s of %(code)s is in force from now; the previous version still verifies "
          "what was signed before it.", version=version.version, code=issuer.code),
        _detail_url(issuer_id, "certificates")))


@bp.route("/guarantees/admin/issuers/<int:issuer_id>/admission", methods=["POST"])
@admin_required
def admin_admission(issuer_id: int):
    """Suspend the issuer (its products are no longer offered) or admit it again."""
    issuer = get_issuer(issuer_id)
    admitted = text("admitted") == "1"
    done = (_("%(code)s is admitted again.", code=issuer.code) if admitted else
            _("%(code)s is suspended: its products are no longer offered.", code=issuer.code))
    return submit("admission", lambda actor: set_issuer_admission(actor, issuer, admitted, text("reason")),
                  page=_detail_page(issuer_id), done=lambda _issuer: (done, _detail_url(issuer_id)))


@bp.route("/guarantees/admin/issuers/<int:issuer_id>/products", methods=["POST"])
@admin_required
def admin_add_product(issuer_id: int):
    """Add a product with its first rate (refused above the rate cap)."""
    issuer = get_issuer(issuer_id)

    def action(actor):
        return add_product(actor, issuer, code=text("code"), name=text("name"), minimum_fee=text("minimum_fee"),
                           rate_permille=text("rate_permille"), maximum_fee=text("maximum_fee") or None,
                           extra_validity_days=days_input("extra_validity_days", 0),
                           claim_answer_days=days_input("claim_answer_days", 7))
    return submit("product", action, page=_detail_page(issuer_id), done=lambda product: (
        _("Product %(code)s is added at %(rate)s.", code=product.code,
          rate=permille_text(product.rates[-1].rate_permille)),
        _detail_url(issuer_id, f"product-{product.id}")))


@bp.route("/guarantees/admin/products/<int:product_id>/rate", methods=["POST"])
@admin_required
def admin_product_rate(product_id: int):
    """Set a product's rate: a new version from now or a later time (refused above the rate cap)."""
    product = get_product(product_id)
    return submit(f"rate-{product.id}", lambda actor: set_product_rate(actor, product, text("rate_permille"),
                                                                        when_input()),
                  page=_detail_page(product.issuer_id), done=lambda version: (
                      _("The rate of %(product)s is %(rate)s from %(at)s (Beijing time).", product=product.name,
                        rate=permille_text(version.rate_permille), at=_when(version.effective_from)),
                      _detail_url(product.issuer_id, f"product-{product.id}")))


@bp.route("/guarantees/admin/products/<int:product_id>/active", methods=["POST"])
@admin_required
def admin_product_active(product_id: int):
    """Withdraw a product from new orders, or offer it again (existing orders keep their terms)."""
    product = get_product(product_id)
    active = text("active") == "1"
    done = (_("%(product)s is offered again.", product=product.name) if active else
            _("%(product)s is withdrawn from new orders.", product=product.name))
    return submit(f"active-{product.id}", lambda actor: set_product_active(actor, product, active),
                  page=_detail_page(product.issuer_id),
                  done=lambda _p: (done, _detail_url(product.issuer_id, f"product-{product.id}")))


@bp.route("/guarantees/admin/policy", methods=["POST"])
@admin_required
def admin_policy():
    """Set the platform's rate cap and reference rate (a new policy version)."""
    def action(actor):
        return set_rate_policy(actor, text("cap_permille"), text("reference_permille"), when_input())

    def done(result: tuple) -> tuple[str, str]:
        policy, affected = result
        message = _("The rate cap is %(cap)s (reference rate %(reference)s) from %(at)s (Beijing time).",
                    cap=permille_text(policy.cap_permille), reference=permille_text(policy.reference_permille),
                    at=_when(policy.effective_from))
        if affected:
            message += " " + _("No longer offered, rate above the new cap: %(products)s.",
                               products=", ".join(_label(p) for p in affected))
        return message, url_for("guarantees.admin_issuers") + "#policy"
    return submit("policy", action, page=_list_page, done=done)


def _label(product: GuaranteeProduct) -> str:
    return f"{product.issuer.code}/{product.code}"
