"""JSON API of sealed bids (flask-smorest blueprint ``bids_api``): uploads, receipts, the transparency log.

Thin views: parse, build the actor, call the service, commit. Finalize commits three times (freeze,
verify and store without locks, then the locked submission) so that no lock is held while a large
envelope is read. The contract, with examples and error codes, is docs/bids-api.md.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import request
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest import Blueprint

from bidding import opening_key, sealed_queries, sealed_single, submissions, translog
from bidding import sealed_spool as spool
from bidding.bids_schemas import (
    ActingQuerySchema,
    ConsistencyQuerySchema,
    EntriesQuerySchema,
    EntrySchema,
    FinalizedSchema,
    InclusionQuerySchema,
    MyBidsQuerySchema,
    MyLotSchema,
    OffsetQuerySchema,
    ProofSchema,
    ReceivedSchema,
    UploadCreateSchema,
    UploadSchema,
    WholeQuerySchema,
    WithdrawnSchema,
)
from bidding.models import Lot, Tender
from bidding.queries import get_tender, managed_organisation_ids
from bidding.receipts import public_keys
from bidding.sealed_errors import LogNotPublic, UploadTooLarge
from bidding.sealed_queries import b64, hexes, signed, upload_out
from core.actor import Actor
from core.db import commit_keeping_loaded, db
from core.errors import Forbidden, NotAuthenticated, NotFound, ValidationFailed
from core.identity.access import current_actor
from core.identity.models import Role
from crypto.receipt import parse_log_entry

blp = Blueprint("bids_api", __name__, url_prefix="/api",
                description="Sealed bids (投标文件): uploads, receipts, withdrawal, the transparency log (透明日志)")


def _bidder(organisation_id: int | None) -> Actor:
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return current_actor(Role.BIDDER, organisation_id)


def _tender(tender_id: int) -> Tender:
    viewer = current_user if current_user and current_user.is_authenticated else None
    return get_tender(tender_id, managed_organisation_ids(viewer))


def _lot(tender: Tender, lot_id: int) -> Lot:
    lot = next((lot for lot in tender.lots if lot.id == lot_id), None)
    if lot is None:
        raise NotFound(_l("Tender %(tender)s has no lot %(lot)s."), code="lot_not_found", tender=tender.code,
                       lot=lot_id)
    return lot


def _viewer_org(organisation_id: int | None) -> int | None:
    """The bidder organisation of an authenticated requester (None for the public)."""
    if not current_user or not current_user.is_authenticated or not current_user.has_role(Role.BIDDER):
        return None
    return current_actor(Role.BIDDER, organisation_id).organisation_id


@blp.route("/tenders/<int:tender_id>/sealing")
class Sealing(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """What a sealing client needs: context fields, opening key, recipients, key mode, size limits."""
        return sealed_queries.sealing_parameters(_tender(tender_id))


@blp.route("/tenders/<int:tender_id>/opening-key")
class OpeningKey(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The tender opening key (开标密钥): public key, threshold and custodians."""
        tender = _tender(tender_id)
        shares = opening_key.shares_of(tender)
        if tender.opening_key_id is None or not shares:
            raise NotFound(_l("Tender %(tender)s has no opening key: each bidder decrypts its own bid."),
                           code="no_opening_key", tender=tender.code)
        return {"key_id": tender.opening_key_id, "public_key_pem": tender.opening_public_key_pem,
                "threshold": shares[0].threshold, "count": len(shares),
                "custodians": [{"name": s.custodian.name, "share_index": s.share_index,
                                "certificate_serial": s.certificate.serial} for s in shares]}


@blp.route("/tenders/<int:tender_id>/opening-key/share")
class MyShare(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """A custodian's own encrypted share and the context needed to decrypt it."""
        if not current_user or not current_user.is_authenticated:
            raise NotAuthenticated()
        actor = current_actor(Role.CUSTODIAN)
        tender = _tender(tender_id)
        share = opening_key.share_for(tender, actor.person_id)
        if share is None:
            raise Forbidden(_l("You are not a key custodian of this tender."), code="not_a_custodian")
        context = opening_key.share_context(tender.code, share.custodian_id, share.share_index)
        return {"share_index": share.share_index, "threshold": share.threshold, "count": share.count,
                "encrypted_share": b64(share.encrypted_share), "context": context.decode(),
                "certificate_serial": share.certificate.serial}


@blp.route("/tenders/<int:tender_id>/lots/<int:lot_id>/uploads")
class Uploads(MethodView):
    @blp.arguments(UploadCreateSchema)
    @blp.response(201, UploadSchema)
    def post(self, data: dict, tender_id: int, lot_id: int):
        """Start an upload of one sealed envelope (declare its size and SHA-256)."""
        actor = _bidder(data.get("organisation_id"))
        tender = _tender(tender_id)
        upload = submissions.create_upload(actor, tender, _lot(tender, lot_id), size=data["size"],
                                           sha256=data["sha256"])
        db.session.commit()
        return upload_out(upload)


@blp.route("/uploads/<upload_id>")
class UploadItem(MethodView):
    @blp.arguments(ActingQuerySchema, location="query")
    @blp.response(200, UploadSchema)
    def get(self, args: dict, upload_id: str):
        """The upload's state and the bytes received (resume at ``received``)."""
        return upload_out(submissions.get_upload(_bidder(args["organisation_id"]), upload_id))

    @blp.arguments(OffsetQuerySchema, location="query")
    @blp.response(200, ReceivedSchema)
    def put(self, args: dict, upload_id: str):
        """Send the next chunk (raw body) at ``offset``; resending an identical chunk is harmless."""
        actor = _bidder(args["organisation_id"])
        upload = submissions.get_upload(actor, upload_id)  # 404 before any byte is read
        size = upload.declared_size
        if (request.content_length or 0) > submissions.MAX_CHUNK:
            raise UploadTooLarge(_l("Send chunks of at most %(n)s bytes."), code="chunk_too_large",
                                 n=submissions.MAX_CHUNK)
        db.session.close()  # hold no database connection while the chunk arrives
        data = request.get_data(cache=False)
        received = submissions.append_chunk(actor, upload, args["offset"], data)  # locks the row anew
        db.session.commit()
        return {"received": received, "size": size}

    @blp.arguments(ActingQuerySchema, location="query")
    @blp.response(200, UploadSchema)
    def delete(self, args: dict, upload_id: str):
        """Cancel an unfinished upload."""
        actor = _bidder(args["organisation_id"])
        upload = submissions.cancel_upload(actor, submissions.get_upload(actor, upload_id))
        db.session.commit()
        return upload_out(upload)


def _finalized(result: submissions.Submitted) -> dict:
    bid, commitment = result.bid, result.commitment
    consistency = None
    if result.consistency_proof is not None:
        consistency = {"from_size": result.previous_head_size, "to_size": bid.head_size,
                       "proof": hexes(result.consistency_proof)}
    return {"bid": bid, "receipt": signed(bid.receipt), "log_entry": b64(result.entry),
            "inclusion_proof": hexes(result.inclusion_proof), "consistency": consistency,
            "bidder_commitment": {"commitment": commitment.commitment, "salt": commitment.salt,
                                  "uscc": bid.organisation.uscc}}


@blp.route("/uploads/<upload_id>/finalize")
class Finalize(MethodView):
    @blp.arguments(ActingQuerySchema, location="query")
    @blp.response(201, FinalizedSchema)
    def post(self, args: dict, upload_id: str):
        """Check size, hash, envelope and signature, store it, and return the signed receipt (回执).

        201 with the receipt; 200 with the same receipt when the upload was already finalized.
        """
        actor = _bidder(args["organisation_id"])
        result, created = submissions.finalize(actor, submissions.get_upload(actor, upload_id))
        return _finalized(result), 201 if created else 200


@blp.route("/tenders/<int:tender_id>/lots/<int:lot_id>/bids")
class WholeBid(MethodView):
    @blp.arguments(WholeQuerySchema, location="query")
    @blp.response(201, FinalizedSchema)
    @blp.alt_response(413, description="Over the lot's limit, or over max_chunk: use the resumable upload")
    @blp.doc(requestBody={"required": True, "description": "The sealed envelope (ciphertext), at most max_chunk bytes",
                          "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})
    def post(self, args: dict, tender_id: int, lot_id: int):
        """Submit an envelope of at most ``max_chunk`` bytes in one request (raw body): the signed receipt.

        The same checks, receipt, log entry and deadline rules as upload + finalize, in one request.
        """
        actor = _bidder(args["organisation_id"])
        size = request.content_length
        if not size:
            raise ValidationFailed(fields={"body": [_l("Send the envelope as the request body, with its "
                                                      "Content-Length.")]})
        if size > submissions.MAX_CHUNK:
            raise UploadTooLarge(_l("Envelopes over %(n)s bytes are sent with the resumable upload (POST "
                                    ".../uploads, PUT the chunks, then finalize)."), code="too_large_for_one_request",
                                 n=submissions.MAX_CHUNK)
        tender = _tender(tender_id)
        lot = _lot(tender, lot_id)
        sha256 = sealed_single.precheck(actor, tender, lot, size=size, sha256=args["sha256"])  # before any byte
        commit_keeping_loaded()  # no database connection is held while the body arrives
        incoming = spool.Incoming(_body(size))  # written and verified as it arrives
        result = sealed_single.submit_whole(actor, tender, lot, sha256=sha256, incoming=incoming, size=size)
        return _finalized(result), 201


def _body(size: int) -> Iterator[bytes]:
    """The request body of ``size`` bytes (its Content-Length), in pieces of at most 1 MiB."""
    remaining = size
    while remaining:
        part = request.stream.read(min(spool.READ_CHUNK, remaining))
        if not part:
            return
        remaining -= len(part)
        yield part


@blp.route("/tenders/<int:tender_id>/lots/<int:lot_id>/withdraw")
class Withdraw(MethodView):
    @blp.arguments(ActingQuerySchema, location="query")
    @blp.response(200, WithdrawnSchema)
    def post(self, args: dict, tender_id: int, lot_id: int):
        """Withdraw (撤回) the current bid for the lot before the deadline."""
        actor = _bidder(args["organisation_id"])
        tender = _tender(tender_id)
        lot = _lot(tender, lot_id)
        db.session.commit()
        result = submissions.withdraw(actor, tender, lot)
        db.session.commit()
        return {"bid": result.bid, "log_index": result.bid.withdrawal_index, "log_entry": b64(result.entry),
                "tree_head": signed(result.tree_head), "inclusion_proof": hexes(result.inclusion_proof)}


@blp.route("/my/bids")
class MyBids(MethodView):
    @blp.arguments(MyBidsQuerySchema, location="query")
    @blp.response(200, MyLotSchema(many=True))
    def get(self, args: dict):
        """The organisation's bids per lot: current version, history with receipts, the next version to seal."""
        actor = _bidder(args["organisation_id"])
        tender = _tender(args["tender_id"]) if args["tender_id"] is not None else None
        return sealed_queries.my_lots(actor, tender)


@blp.route("/tenders/<int:tender_id>/bids/summary")
class Summary(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The number of bids per lot, published at the deadline (never before, to anyone)."""
        closing = sealed_queries.closing_of(_tender(tender_id))
        if closing is None:
            raise Forbidden(_l("The number of bids is published at the bid deadline, not before."),
                            code="counts_not_public")
        return closing


@blp.route("/tenders/<int:tender_id>/log/head")
class Head(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The final signed tree head (published at the deadline) and the latest one."""
        tender = _tender(tender_id)
        if not sealed_queries.visibility(tender, None).public:
            raise LogNotPublic()
        return sealed_queries.heads(tender)


def _check_size(tender: Tender, size: int) -> None:
    have = translog.size_of(tender.id)
    if size > have:
        raise ValidationFailed(_l("The log has %(n)s entries; there is no tree of size %(size)s."),
                               code="no_such_size", n=have, size=size)


@blp.route("/tenders/<int:tender_id>/log/inclusion")
class Inclusion(MethodView):
    @blp.arguments(InclusionQuerySchema, location="query")
    @blp.response(200, ProofSchema)
    def get(self, args: dict, tender_id: int):
        """Inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        tender = _tender(tender_id)
        index, size = args["index"], args["size"]
        seen = sealed_queries.visibility(tender, _viewer_org(args["organisation_id"]))
        if not seen.public and (index not in seen.indexes or size not in seen.sizes):
            raise LogNotPublic()
        _check_size(tender, size)
        if index >= size:
            raise ValidationFailed(_l("Entry %(index)s is not in a tree of %(size)s entries."),
                                   code="no_such_entry", index=index, size=size)
        head = translog.head_at(tender.id, size)
        return {"index": index, "size": size, "leaf_hash": translog.entry_at(tender.id, index).leaf_hash,
                "proof": hexes(translog.inclusion_proof(tender.id, index, size)),
                "tree_head": signed(head.document) if head else None}


@blp.route("/tenders/<int:tender_id>/log/consistency")
class Consistency(MethodView):
    @blp.arguments(ConsistencyQuerySchema, location="query")
    @blp.response(200, ProofSchema)
    def get(self, args: dict, tender_id: int):
        """Consistency proof that the tree of ``first`` entries is a prefix of the tree of ``second``."""
        tender = _tender(tender_id)
        first, second = args["first"], args["second"]
        seen = sealed_queries.visibility(tender, _viewer_org(args["organisation_id"]))
        if not seen.public and not {first, second} <= seen.sizes:
            raise LogNotPublic()
        _check_size(tender, second)
        if first > second:
            raise ValidationFailed(_l("The first size must not exceed the second."), code="bad_sizes")
        return {"first": first, "second": second, "proof": hexes(translog.consistency_proof(tender.id, first, second))}


@blp.route("/tenders/<int:tender_id>/log/entries")
class Entries(MethodView):
    @blp.arguments(EntriesQuerySchema, location="query")
    @blp.response(200, EntrySchema(many=True))
    def get(self, args: dict, tender_id: int):
        """Log entries ``start`` (inclusive) to ``end`` (exclusive), at most 1000 (after the deadline)."""
        tender = _tender(tender_id)
        if not sealed_queries.visibility(tender, None).public:
            raise LogNotPublic()
        start = args["start"]
        end = min(args["end"] if args["end"] is not None else start + 1000, start + 1000)
        return [{"index": e.index, "kind": e.kind, "entry": b64(e.entry), "body": parse_log_entry(e.entry),
                 "leaf_hash": e.leaf_hash} for e in translog.entries(tender.id, start, end)]


@blp.route("/tenders/<int:tender_id>/log/bidders")
class Bidders(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """Who stands behind each commitment (salt and USCC), published from the opening on."""
        tender = _tender(tender_id)
        if tender.status not in sealed_queries.OPENED:
            raise Forbidden(_l("The bidders behind the log's commitments are published at the opening."),
                            code="bidders_not_public")
        return sealed_queries.commitment_openings(tender)


@blp.route("/transparency/keys")
class Keys(MethodView):
    @blp.response(200)
    def get(self):
        """The platform's public log key (tree heads) and receipt key (receipts)."""
        return public_keys()
