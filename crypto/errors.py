"""Every verdict of the crypto library is one of these exceptions.

All derive from :class:`CryptoError` (a ``ValueError``), so a caller can catch the whole family, or one
specific class to react to one specific cause. Messages are meant to be shown to people: they say what
was wrong, never a secret.
"""

from __future__ import annotations


class CryptoError(ValueError):
    """Base class of every error this package raises on bad input."""


# --- envelopes ---------------------------------------------------------------------------------------

class EnvelopeError(CryptoError):
    """The envelope cannot be sealed, verified or opened."""


class EnvelopeFormatError(EnvelopeError):
    """The bytes are not a well-formed envelope (wrong magic, version, field or length)."""


class UnsupportedSuite(EnvelopeFormatError):
    """The envelope names an algorithm suite this program does not implement."""


class EnvelopeTruncated(EnvelopeError):
    """The envelope ends before its last segment or its signature."""


class EnvelopeTampered(EnvelopeError):
    """A segment failed authentication, or bytes were added, removed, reordered or changed."""


class SignatureInvalid(EnvelopeError):
    """The bidder's signature over header and ciphertext does not verify."""


class WrongSigner(EnvelopeError):
    """The envelope names another signing key than the one supplied for verification."""


class ContextMismatch(EnvelopeError):
    """The envelope was sealed for another tender, lot, bidder or bid version."""


class RecipientMissing(EnvelopeError):
    """A recipient that the tender requires (e.g. the tender opening key) is not in the envelope."""


class NotARecipient(EnvelopeError):
    """None of the supplied private keys is a recipient of this envelope."""


class UnwrapFailed(EnvelopeError):
    """The content key addressed to this key does not decrypt (wrong key or altered envelope)."""


class MissingKeyPart(EnvelopeError):
    """Double-envelope mode: one of the two halves of the content key is missing."""


class WrongContentKey(EnvelopeError):
    """The supplied content key does not open this envelope's first segment."""


# --- HPKE --------------------------------------------------------------------------------------------

class HpkeError(CryptoError):
    """HPKE (RFC 9180) setup or decryption failed."""


# --- Shamir custody ----------------------------------------------------------------------------------

class ShareError(CryptoError):
    """A key share cannot be used."""


class ShareFormatError(ShareError):
    """The bytes are not a share (wrong magic, version, length or checksum)."""


class ShareKeyMismatch(ShareError):
    """A share belongs to another key, or to another split of the same key."""


class SharesInsufficient(ShareError):
    """Fewer distinct shares than the threshold were supplied."""


class SharesInvalid(ShareError):
    """The shares do not reconstruct the published public key: at least one share is wrong."""


# --- Merkle proofs -----------------------------------------------------------------------------------

class MerkleError(CryptoError):
    """A Merkle tree operation got impossible arguments."""


class InclusionProofInvalid(MerkleError):
    """The inclusion proof does not lead from the leaf to the tree head's root."""


class ConsistencyProofInvalid(MerkleError):
    """The consistency proof does not show that the old tree is a prefix of the new one."""


# --- signed documents (receipts, tree heads, log entries) --------------------------------------------

class DocumentError(CryptoError):
    """A receipt, tree head or log entry cannot be accepted."""


class DocumentFormatError(DocumentError):
    """Malformed or non-canonical encoding, unknown field, or wrong field type."""


class DocumentTypeMismatch(DocumentError):
    """The document is of another type than expected (e.g. a tree head offered as a receipt)."""


class DocumentSignatureInvalid(DocumentError):
    """The document's signature does not verify under the given key."""


class ReceiptInconsistent(DocumentError):
    """The receipt contradicts its tree head, its log entry or the submitted envelope."""
