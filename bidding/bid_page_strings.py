"""The sentences the sealing and my-bids scripts show, in the reader's language.

The scripts (``ebid/static/seal/``) hold no text of their own: the templates render these dictionaries into
``data-strings`` and the scripts fill in the ``%(name)s`` placeholders. Keys are the scripts' error and
status codes.
"""

from __future__ import annotations

from flask_babel import gettext as _


def _verify_strings() -> dict[str, str]:
    """Why a receipt or a proof does not check out (codes of receipt.js's VerifyError)."""
    return {
        "verify_failed": _("Verification FAILED: %(reason)s Keep the receipt and the envelope and report it to the "
                           "trading centre's supervisor (监督)."),
        "verify_receipt_signature": _("the receipt's signature does not verify with the platform's receipt key."),
        "verify_head_signature": _("a tree head's signature does not verify with the platform's log key."),
        "verify_type": _("a signed document is not of the expected type."),
        "verify_index_outside": _("the receipt's log index is outside its tree head."),
        "verify_head_older": _("the receipt's tree head is older than the time the bid was received."),
        "verify_envelope_hash": _("the receipt names another envelope hash than the one sealed."),
        "verify_envelope_size": _("the receipt names another envelope size than the one sealed."),
        "verify_entry_mismatch": _("the log entry does not record the submission this receipt confirms."),
        "verify_inclusion": _("the inclusion proof does not lead to the signed tree head."),
        "verify_consistency": _("the log of the receipt's tree head is not a prefix of the final log."),
        "verify_other_lot": _("the receipt is for another tender or lot than the one sealed for."),
        "verify_commitment": _("the receipt's bidder commitment is not your organisation's."),
        "verify_version": _("the receipt confirms another bid version than the one sealed."),
        "verify_key_mismatch": _("a published platform key does not match its key id."),
        "verify_keys_missing": _("the platform does not publish its log and receipt keys."),
        "verify_proof_malformed": _("a proof holds something other than 32-byte hashes."),
        "verify_not_a_bundle": _("this is not an ebid receipt file."),
        "verify_other_entry": _("the server's log holds another entry at the receipt's index."),
        "verify_opening_missing": _("the final log does not end with the opening entry."),
        "verify_opening_other_envelope": _("the set of bids to open names another envelope for this version."),
        "network": _("The server cannot be reached; check the connection and try again."),
        "generic": _("Something went wrong: %(reason)s"),
    }


def seal_strings() -> dict[str, str]:
    """Everything the sealing page's script says."""
    strings = {
        "progress_key": _("Unlocking the signing key (this takes a few seconds)…"),
        "progress_hash": _("Reading the documents: %(done)s of %(total)s"),
        "progress_seal": _("Sealing in this browser: %(done)s of %(total)s"),
        "progress_upload": _("Uploading the sealed envelope: %(done)s of %(total)s"),
        "retrying": _("The connection dropped; resuming the upload (attempt %(n)s)…"),
        "key_missing": _("Choose your private key file."),
        "key_needs_passphrase": _("This key file is encrypted: type its passphrase."),
        "key_ok": _("Key %(id)s… unlocked; it matches your %(certificate)s."),
        "key_not_certified": _("The key %(id)s… is not certified for your organisation or for you. Use the key you "
                               "made the certificate request with, or have the platform CA certify this key."),
        "key_certificate_unusable": _("The certificate of key %(id)s… cannot be used: %(reason)s."),
        "key_not_a_key": _("This file is not a private key. Choose the key file 'ebid client keygen' wrote, or a PEM "
                           "private key."),
        "key_not_private": _("This file is a certificate or a public key; choose the private key file instead."),
        "key_passphrase_needed": _("This key file is encrypted: type its passphrase."),
        "key_wrong_passphrase": _("The passphrase does not open this key file (it is case-sensitive), or the file "
                                  "was altered."),
        "key_unsupported_curve": _("This key is not an EC P-256 key; the platform's certificates use P-256."),
        "key_unsupported_encryption": _("This key file is encrypted in a way this page cannot read; use a key from "
                                        "'ebid client keygen' or PBES2 (PBKDF2 or scrypt with AES-CBC)."),
        "key_damaged": _("The key file is damaged."),
        "fix_fields": _("Some entries need correcting; see the messages beside the fields."),
        "field_required": _("Fill this in."),
        "field_one_line": _("One line of at most 100 characters."),
        "field_price_separators": _("Write the price without thousands separators, e.g. 12345678.00."),
        "field_price_format": _("An amount in yuan with at most two decimals, e.g. 12345678.00."),
        "field_price_digits": _("At most 16 digits before the decimal point."),
        "field_price_positive": _("The price must be more than zero."),
        "field_duration": _("A whole number of calendar days from 1 to 3650."),
        "field_too_many_documents": _("A bid holds at most 500 documents."),
        "field_document_name": _("The file name %(name)s cannot be used: rename it (no folders, not starting with a "
                                 "dot, at most 200 characters)."),
        "field_document_twice": _("Two documents are named %(name)s; rename one of them."),
        "zip_missing": _("Choose the bid ZIP made with 'ebid client build'."),
        "zip_not_bid": _("This ZIP holds no ebid bid.json; make it with 'ebid client build'."),
        "zip_unreadable": _("The ZIP cannot be read: %(reason)s"),
        "zip_other_lot": _("This bid was built for lot %(built)s, but you are sealing for lot %(lot)s. Build it "
                           "again with --lot %(lot)s."),
        "opening_key_mismatch": _("The tender's published opening key does not match its key id: do not seal, and "
                                  "tell the trading centre."),
        "deadline_passed": _("The bid deadline has passed: envelopes are no longer accepted."),
        "too_large": _("The sealed envelope would have %(size)s; this lot accepts at most %(limit)s."),
        "receipt_checking": _("Checking the receipt…"),
        "receipt_log": _("entry %(index)s of the tender's log, in the signed tree head of %(size)s entries"),
        "receipt_verified": _("Receipt verified in this browser: the receipt and its tree head carry valid platform "
                              "signatures, and the inclusion proof shows log entry %(index)s in the tree of %(size)s "
                              "entries."),
        "pending": _("A sealed envelope for this lot (version %(version)s, %(size)s, sealed %(at)s) was not "
                     "completely uploaded."),
        "no_webcrypto": _("This browser cannot seal here (no WebCrypto). Open the page over HTTPS in a current "
                          "browser, or seal with 'ebid client seal'."),
    }
    strings.update(_verify_strings())
    return strings


def bids_strings() -> dict[str, str]:
    """Everything the my-bids page's script says."""
    strings = {
        "checking": _("Checking in this browser…"),
        "verified_open": _("Verified in this browser: signatures, log entry %(index)s, inclusion in the tree of "
                           "%(size)s entries. The final log is published at the bid deadline: check again then."),
        "verified_this": _("Verified in this browser against the final log: the entry is included and the opening "
                           "entry lists this envelope among the bids to open."),
        "verified_other": _("Verified in this browser against the final log: the entry is included; a later version "
                            "replaced it."),
        "verified_none": _("Verified in this browser against the final log: the entry is included; the bid was "
                           "withdrawn."),
        "withdraw_confirm": _("Withdraw this bid? It will not be opened. You can submit a new one before the "
                              "deadline."),
    }
    strings.update(_verify_strings())
    return strings
