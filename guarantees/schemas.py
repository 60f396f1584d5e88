"""Input validation and JSON shapes of the e-guarantee API (flask-smorest / marshmallow, with OpenAPI)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP

from flask_smorest.fields import Upload
from marshmallow import EXCLUDE, Schema, fields, validate

from guarantees.models import ClaimTrigger, GuaranteeType, WaiverKind
from guarantees.release import ReleaseReason


def _money(**kwargs) -> fields.Decimal:
    return fields.Decimal(places=2, rounding=ROUND_HALF_UP, as_string=True, allow_nan=False, **kwargs)


def _rate(**kwargs) -> fields.Decimal:
    return fields.Decimal(as_string=True, allow_nan=False, **kwargs)


def _choice(enum_type, **kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf([m.value for m in enum_type]), **kwargs)


class ActingSchema(Schema):
    """Which organisation the caller acts for (defaults to the only one it may act for)."""

    class Meta:
        unknown = EXCLUDE

    organisation_id = fields.Integer(load_default=None, metadata={"description": "Organisation to act for"})


class ApplySchema(ActingSchema):
    tender_id = fields.Integer(required=True)
    lot_id = fields.Integer(required=True)
    product_id = fields.Integer(required=True)
    guarantee_type = _choice(GuaranteeType, load_default=GuaranteeType.PLAIN.value,
                             metadata={"description": "plain (明文) or sealed (密文)"})


class ReasonSchema(ActingSchema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class ReleaseSchema(ActingSchema):
    reason = _choice(ReleaseReason, required=True)
    note = fields.String(load_default="", validate=validate.Length(max=500))


class WaiverInSchema(ActingSchema):
    tender_id = fields.Integer(required=True)
    lot_id = fields.Integer(required=True)
    kind = _choice(WaiverKind, required=True)
    statement = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class ClaimFormSchema(ActingSchema):
    trigger = _choice(ClaimTrigger, required=True)
    amount = _money(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class EvidenceSchema(Schema):
    evidence = fields.List(Upload(), required=True, metadata={"description": "Evidence files (repeat the field)"})


class LetterUploadSchema(Schema):
    file = Upload(required=True, metadata={"description": "The letter PDF"})


class VerifyQuerySchema(Schema):
    no = fields.String(required=True, validate=validate.Length(min=1, max=64),
                       metadata={"description": "Guarantee number (保函编号)"})
    code = fields.String(required=True, validate=validate.Length(min=1, max=16),
                         metadata={"description": "Verification code (验真码)"})
    confirm = fields.Boolean(load_default=False, metadata={"description": "Also ask the issuer's registry"})


class FiguresQuerySchema(Schema):
    period = fields.String(required=True, metadata={"description": "2025 | 2025-Q1 | 2025-03"})
    region = fields.String(load_default=None, validate=validate.Length(max=12),
                           metadata={"description": "Administrative division code, e.g. 370200"})


class IssuerSchema(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.Function(lambda i: i.kind.value)


class RequirementSchema(Schema):
    mode = fields.Function(lambda r: r.mode.value)
    required = fields.Boolean()
    amount = _money(allow_none=True)
    accepted_forms = fields.Function(lambda r: [f.value for f in r.accepted_forms])
    waiver_kind = fields.Function(lambda r: r.waiver_kind.value if r.waiver_kind else None)
    waiver_refusal = fields.Function(lambda r: str(r.waiver_refusal) if r.waiver_refusal else None)
    valid_until = fields.AwareDateTime(allow_none=True)
    bid_validity_days = fields.Integer()
    extra_validity_days = fields.Integer()


class OfferSchema(Schema):
    product_id = fields.Function(lambda o: o.product.id)
    product_code = fields.Function(lambda o: o.product.code)
    product_name = fields.Function(lambda o: o.product.name)
    issuer = fields.Nested(IssuerSchema)
    rate_id = fields.Integer()
    rate_permille = _rate()
    premium = _money()
    amount = _money()
    minimum_fee = _money()
    maximum_fee = _money(allow_none=True)
    extra_validity_days = fields.Integer()


class UnavailableSchema(Schema):
    product_id = fields.Function(lambda u: u.product.id)
    product_name = fields.Function(lambda u: u.product.name)
    issuer = fields.Function(lambda u: u.product.issuer.name)
    code = fields.String()
    reason = fields.Function(lambda u: str(u.reason))


class OffersSchema(Schema):
    requirement = fields.Nested(RequirementSchema)
    offers = fields.List(fields.Nested(OfferSchema))
    unavailable = fields.List(fields.Nested(UnavailableSchema))


class ProgressSchema(Schema):
    state = fields.String()
    waiting = fields.Boolean()
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    text = fields.String()


class ClaimSchema(Schema):
    claim_no = fields.String()
    trigger = fields.Function(lambda c: c.trigger.value)
    amount = _money()
    reason = fields.String()
    evidence = fields.List(fields.Dict())
    state = fields.Function(lambda c: c.state.value)
    filed_at = fields.AwareDateTime()
    answer_due_at = fields.AwareDateTime()
    decided_at = fields.AwareDateTime(allow_none=True)
    amount_paid = _money(allow_none=True)
    decision_reason = fields.String(allow_none=True)


class OrderSchema(Schema):
    order_no = fields.String()
    state = fields.Function(lambda o: o.state.value)
    progress = fields.Nested(ProgressSchema, allow_none=True)
    tender_id = fields.Integer()
    tender_code = fields.Function(lambda o: o.tender.code)
    lot_id = fields.Integer()
    lot_code = fields.Function(lambda o: o.lot.code)
    bidder_id = fields.Integer()
    issuer = fields.Nested(IssuerSchema)
    product_code = fields.Function(lambda o: o.product.code)
    rate_id = fields.Integer()
    rate_permille = _rate()
    amount = _money()
    premium = _money()
    guarantee_type = fields.Function(lambda o: o.guarantee_type.value)
    required_valid_until = fields.AwareDateTime()
    guarantee_no = fields.String(allow_none=True)
    issued_at = fields.AwareDateTime(allow_none=True)
    valid_from = fields.AwareDateTime(allow_none=True)
    valid_until = fields.AwareDateTime(allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    letter_sha256 = fields.String(allow_none=True)
    verification_code = fields.String(allow_none=True)
    bound_at = fields.AwareDateTime(allow_none=True)
    verified_at_opening = fields.AwareDateTime(allow_none=True)
    released_at = fields.AwareDateTime(allow_none=True)
    release_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    claims = fields.List(fields.Nested(ClaimSchema))


class WaiverSchema(Schema):
    id = fields.Integer()
    tender_id = fields.Integer()
    lot_id = fields.Integer()
    kind = fields.Function(lambda w: w.kind.value)
    statement = fields.String()
    bond_amount = _money(allow_none=True)
    created_at = fields.AwareDateTime()


class CallbackAnswerSchema(Schema):
    accepted = fields.Boolean()
    outcome = fields.String(metadata={"description": "applied, or absorbed (a duplicate: nothing changed)"})
    state = fields.String()


class CheckSchema(Schema):
    name = fields.String()
    passed = fields.Boolean(allow_none=True)
    reason = fields.String()


class VerificationSchema(Schema):
    valid = fields.Boolean()
    sha256 = fields.String(allow_none=True)
    checks = fields.List(fields.Nested(CheckSchema))
    letter = fields.Dict(allow_none=True)


class OpeningCheckSchema(Schema):
    lot_id = fields.Integer()
    bidder_id = fields.Integer()
    order_id = fields.Integer(allow_none=True)
    waiver_id = fields.Integer(allow_none=True)
    passed = fields.Boolean()
    checks = fields.List(fields.Dict())
    checked_at = fields.AwareDateTime()


class FiguresSchema(Schema):
    period = fields.String()
    region = fields.String(allow_none=True)
    guarantees_issued = fields.Integer()
    guaranteed_amount = _money()
    premiums_paid = _money()
    premiums_saved = _money()
    waivers = fields.Integer()
    bond_waived = _money()
