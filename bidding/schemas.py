"""Marshmallow schemas of the tender API: what a request may send and what a response shows."""

from __future__ import annotations

from datetime import UTC
from decimal import ROUND_HALF_UP

from flask_babel import lazy_gettext as _l
from flask_smorest.fields import Upload
from marshmallow import EXCLUDE, Schema, fields, validate

from bidding.models import DecryptionMode, ProcurementCategory, Regime, TenderStatus

AWARE = {"invalid_awareness": _l("Give the time with its UTC offset, e.g. 2026-03-01T09:00:00+08:00.")}


def _when(**kwargs) -> fields.AwareDateTime:
    return fields.AwareDateTime(error_messages=AWARE, **kwargs)


def _money(**kwargs) -> fields.Decimal:
    return fields.Decimal(places=2, rounding=ROUND_HALF_UP, as_string=True, allow_nan=False,
                          validate=validate.Range(min=-10**15, max=10**15), **kwargs)


def _choice(enum_type, **kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf([m.value for m in enum_type]), **kwargs)


class ActingSchema(Schema):
    """Which organisation the caller acts for (defaults to the only one it may act for)."""

    class Meta:
        unknown = EXCLUDE  # multipart forms carry the CSRF token and the file next to these fields

    organisation_id = fields.Integer(load_default=None, metadata={"description": "Organisation to act for"})


class LotInSchema(Schema):
    code = fields.String(validate=validate.Length(max=50), load_default=None)
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description = fields.String(load_default="")
    estimated_price = _money(required=True)
    ceiling_price = _money(load_default=None, allow_none=True)
    bond_amount = _money(load_default=None, allow_none=True)
    max_bid_bytes = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1 << 10, max=1 << 40),
                                   metadata={"description": "largest sealed envelope accepted for the lot, in "
                                                            "bytes; empty: the platform default (2 GiB)"})


class TenderFieldsSchema(ActingSchema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    description = fields.String()
    regime = _choice(Regime)
    category = _choice(ProcurementCategory)
    is_mandatory = fields.Boolean()
    region = fields.String(validate=validate.Length(min=2, max=12))
    agency_id = fields.Integer(allow_none=True)
    estimated_price = _money()
    ceiling_price = _money(allow_none=True)
    documents_from_at = _when(allow_none=True)
    documents_until_at = _when(allow_none=True)
    question_deadline_at = _when(allow_none=True)
    bid_deadline_at = _when(allow_none=True)
    bid_validity_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    evaluation_method = fields.Dict()
    guarantee_policy = fields.Dict()
    decryption_mode = _choice(DecryptionMode)
    custodian_threshold = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=100))
    custodian_ids = fields.List(fields.Integer(), metadata={"description": "Key custodians (密钥保管人), in order"})
    lots = fields.List(fields.Nested(LotInSchema))


class TenderCreateSchema(TenderFieldsSchema):
    code = fields.String(validate=validate.Length(min=3, max=40))
    tenderer_id = fields.Integer(metadata={"description": "The tenderer (招标人); required when an agency creates"})
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    regime = _choice(Regime, required=True)
    category = _choice(ProcurementCategory, required=True)
    estimated_price = _money(required=True)


class TenderUpdateSchema(TenderFieldsSchema):
    version = fields.Integer(required=True, metadata={"description": "The version you edited (optimistic lock)"})


class VersionSchema(ActingSchema):
    version = fields.Integer(load_default=None,
                             metadata={"description": "The version you saw; or send it in the If-Match header"})


class AmendmentInSchema(VersionSchema):
    summary = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    affects_bids = fields.Boolean(required=True,
                                  metadata={"description": "Whether the change may affect bid preparation"})
    description = fields.String()
    documents_until_at = _when()
    question_deadline_at = _when()
    bid_deadline_at = _when()
    document_ids = fields.List(fields.Integer(), load_default=list)
    withdraw_document_ids = fields.List(fields.Integer(), load_default=list)


class CancelSchema(VersionSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class TextSchema(ActingSchema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=10000))


class AnswerSchema(ActingSchema):
    answer = fields.String(required=True, validate=validate.Length(min=1, max=10000))


class UploadSchema(Schema):
    file = Upload(required=True)


class UploadFormSchema(ActingSchema):
    kind = fields.String(load_default="tenderNotice", validate=validate.Length(min=1, max=32))


class TenderQuerySchema(Schema):
    q = fields.String(load_default=None, metadata={"description": "Text in the title, code or description"})
    status = _choice(TenderStatus)
    regime = _choice(Regime)
    category = _choice(ProcurementCategory)
    region = fields.String()
    tenderer_id = fields.Integer()
    deadline_after = _when()
    deadline_before = _when()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class QuestionQuerySchema(ActingSchema):
    pending = fields.Boolean(load_default=False,
                             metadata={"description": "Staff only: the questions still to be answered"})


# ---- responses ----

class UTCDateTime(fields.AwareDateTime):
    """Times are always shown in UTC (ISO 8601, ``+00:00``); pages show them in Beijing time."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else super()._serialize(value.astimezone(UTC), attr, obj, **kwargs)


def _out_when(attribute: str | None = None) -> fields.AwareDateTime:
    return UTCDateTime(default_timezone=UTC, attribute=attribute, dump_only=True)


class OrganisationRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    uscc = fields.String()


class LotSchema(Schema):
    id = fields.Integer()
    number = fields.Integer()
    code = fields.String()
    title = fields.String()
    description = fields.String()
    estimated_price = _money()
    ceiling_price = _money(allow_none=True)
    bond_amount = _money(allow_none=True)
    max_bid_bytes = fields.Integer(allow_none=True)


class DocumentSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    filename = fields.String()
    content_type = fields.String()
    sha256 = fields.String(metadata={"description": "SHA-256 of the file, hex"})
    size = fields.Integer()
    amendment_id = fields.Integer(allow_none=True)
    uploaded_at = _out_when()
    published_at = _out_when()
    is_withdrawn = fields.Boolean()


class AmendmentSchema(Schema):
    id = fields.Integer()
    number = fields.Integer()
    summary = fields.String()
    affects_bids = fields.Boolean()
    changes = fields.Dict()
    previous_deadline_at = _out_when()
    new_deadline_at = _out_when()
    published_at = _out_when()
    document_ids = fields.Method("_document_ids")

    def _document_ids(self, amendment) -> list[int]:
        return [d.id for d in amendment.documents]


class TenderSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    title = fields.String()
    description = fields.String()
    regime = fields.String()
    category = fields.String()
    is_mandatory = fields.Boolean()
    region = fields.String()
    status = fields.String()
    tenderer = fields.Nested(OrganisationRefSchema)
    agency = fields.Nested(OrganisationRefSchema, allow_none=True)
    currency = fields.String()
    estimated_price = _money()
    ceiling_price = _money(allow_none=True)
    documents_from_at = _out_when()
    documents_until_at = _out_when()
    question_deadline_at = _out_when()
    bid_deadline_at = _out_when()
    opening_at = _out_when()
    bid_validity_days = fields.Integer()
    evaluation_method = fields.Dict()
    guarantee_policy = fields.Dict()
    decryption_mode = fields.String()
    custodian_threshold = fields.Integer(allow_none=True)
    custodian_ids = fields.Method("_custodian_ids")
    rules_version = fields.String(allow_none=True)
    is_suspended = fields.Boolean()
    published_at = _out_when()
    cancelled_at = _out_when()
    cancel_reason = fields.String(allow_none=True)
    version = fields.Integer()
    lots = fields.List(fields.Nested(LotSchema))
    documents = fields.List(fields.Nested(DocumentSchema),
                            metadata={"description": "Issued documents; the tender's staff also see staged ones"})
    amendments = fields.List(fields.Nested(AmendmentSchema))

    def _custodian_ids(self, tender) -> list[int]:
        return [c.person_id for c in tender.custodians]


class TenderSummarySchema(Schema):
    id = fields.Integer()
    code = fields.String()
    title = fields.String()
    status = fields.String()
    regime = fields.String()
    category = fields.String()
    region = fields.String()
    estimated_price = _money()
    bid_deadline_at = _out_when()
    published_at = _out_when()
    is_suspended = fields.Boolean()


class TenderPageSchema(Schema):
    items = fields.List(fields.Nested(TenderSummarySchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()


class QuestionSchema(Schema):
    """A published question and answer; the asker is never shown."""

    id = fields.Integer()
    text = fields.String()
    answer = fields.String(allow_none=True)
    asked_at = _out_when()
    answered_at = _out_when()


class ObjectionSchema(Schema):
    id = fields.Integer()
    tender_id = fields.Integer()
    organisation_id = fields.Integer()
    text = fields.String()
    status = fields.String()
    raised_at = _out_when()
    answer_due_at = _out_when()
    answer = fields.String(allow_none=True)
    answered_at = _out_when()


class ErrorSchema(Schema):
    """The one error shape of the API."""

    code = fields.String(required=True, metadata={"description": "Machine-readable reason"})
    message = fields.String(required=True, metadata={"description": "What went wrong and what to do"})
    field_messages = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), data_key="fields",
                                 metadata={"description": "Per-field messages, keyed by field path"})
