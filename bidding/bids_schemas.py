"""Marshmallow schemas of the sealed-bid API (see docs/bids-api.md for the full contract)."""

from __future__ import annotations

import json

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, fields, validate

HEX64 = validate.Regexp(r"^[0-9a-fA-F]{64}$", error=_l("Give 64 hexadecimal digits."))


class ActingQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    organisation_id = fields.Integer(load_default=None, metadata={"description": "Organisation to act for"})


class UploadCreateSchema(Schema):
    organisation_id = fields.Integer(load_default=None)
    size = fields.Integer(required=True, validate=validate.Range(min=1), metadata={"description": "Envelope bytes"})
    sha256 = fields.String(required=True, validate=HEX64, metadata={"description": "SHA-256 of the envelope (hex)"})


class WholeQuerySchema(ActingQuerySchema):
    sha256 = fields.String(required=True, validate=HEX64,
                           metadata={"description": "SHA-256 of the envelope sent as the body (hex)"})


class OffsetQuerySchema(ActingQuerySchema):
    offset = fields.Integer(required=True, validate=validate.Range(min=0),
                            metadata={"description": "Byte offset of this chunk; must equal the bytes received"})


class UploadSchema(Schema):
    id = fields.String()
    tender_id = fields.Integer()
    lot_id = fields.Integer()
    size = fields.Integer(metadata={"description": "Declared envelope bytes"})
    sha256 = fields.String(metadata={"description": "Declared SHA-256 (hex)"})
    received = fields.Integer(metadata={"description": "Bytes received so far: resume at this offset"})
    status = fields.String(metadata={"description": "open, finalizing, finalized, failed, cancelled, withdrawn"})
    failure_code = fields.String(allow_none=True)
    failure_message = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    max_chunk = fields.Integer(metadata={"description": "Largest chunk accepted, in bytes"})
    bid_id = fields.String(allow_none=True, metadata={"description": "The bid it became (when finalized)"})


class ReceivedSchema(Schema):
    received = fields.Integer()
    size = fields.Integer()


class BidSchema(Schema):
    id = fields.String(attribute="public_id")
    tender_id = fields.Integer()
    tender_code = fields.Function(lambda b: b.tender.code)
    lot_id = fields.Integer()
    lot_code = fields.Function(lambda b: b.lot.code)
    version = fields.Integer()
    state = fields.String()
    envelope_sha256 = fields.String()
    envelope_size = fields.Integer()
    received_at = fields.AwareDateTime()
    replaced_at = fields.AwareDateTime(allow_none=True)
    withdrawn_at = fields.AwareDateTime(allow_none=True)
    log_index = fields.Integer()
    tree_size = fields.Integer(attribute="head_size")
    receipt = fields.Function(lambda b: json.loads(b.receipt),
                              metadata={"description": "The signed receipt (ebid/receipt/v1)"})


class CommitmentSchema(Schema):
    commitment = fields.String()
    salt = fields.String()
    uscc = fields.String()


class ConsistencySchema(Schema):
    from_size = fields.Integer()
    to_size = fields.Integer()
    proof = fields.List(fields.String())


class FinalizedSchema(Schema):
    bid = fields.Nested(BidSchema)
    receipt = fields.Raw()
    log_entry = fields.String(metadata={"description": "Base64 of the log entry's canonical bytes"})
    inclusion_proof = fields.List(fields.String(), metadata={"description": "Hex hashes, leaf to root"})
    bidder_commitment = fields.Nested(CommitmentSchema)
    consistency = fields.Nested(ConsistencySchema, allow_none=True)


class WithdrawnSchema(Schema):
    bid = fields.Nested(BidSchema)
    log_index = fields.Integer()
    log_entry = fields.String()
    tree_head = fields.Raw()
    inclusion_proof = fields.List(fields.String())


class MyLotSchema(Schema):
    tender_id = fields.Integer()
    tender_code = fields.String()
    lot_id = fields.Integer()
    lot_code = fields.String()
    next_bid_version = fields.Integer()
    current = fields.Nested(BidSchema, allow_none=True)
    history = fields.List(fields.Nested(BidSchema))
    uploads = fields.List(fields.Nested(UploadSchema))


class MyBidsQuerySchema(ActingQuerySchema):
    tender_id = fields.Integer(load_default=None)


class InclusionQuerySchema(ActingQuerySchema):
    index = fields.Integer(required=True, validate=validate.Range(min=0))
    size = fields.Integer(required=True, validate=validate.Range(min=1))


class ConsistencyQuerySchema(ActingQuerySchema):
    first = fields.Integer(required=True, validate=validate.Range(min=0))
    second = fields.Integer(required=True, validate=validate.Range(min=1))


class EntriesQuerySchema(Schema):
    start = fields.Integer(load_default=0, validate=validate.Range(min=0))
    end = fields.Integer(load_default=None, validate=validate.Range(min=0))


class ProofSchema(Schema):
    index = fields.Integer()
    first = fields.Integer()
    second = fields.Integer()
    size = fields.Integer()
    leaf_hash = fields.String()
    proof = fields.List(fields.String())
    tree_head = fields.Raw(allow_none=True)


class EntrySchema(Schema):
    index = fields.Integer()
    kind = fields.String()
    entry = fields.String(metadata={"description": "Base64 of the canonical entry bytes"})
    body = fields.Raw()
    leaf_hash = fields.String()
