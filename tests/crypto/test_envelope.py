"""Envelope format v1: round trips, tampering of every byte class, truncation, reordering, keys."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import envelope as E
from crypto.errors import (
    ContextMismatch,
    EnvelopeError,
    EnvelopeFormatError,
    EnvelopeTampered,
    EnvelopeTruncated,
    MissingKeyPart,
    NotARecipient,
    RecipientMissing,
    SignatureInvalid,
    UnsupportedSuite,
    UnwrapFailed,
    WrongContentKey,
    WrongSigner,
)
from crypto.header import FIXED_SIZE, read_header

SEG = 64
SIZES = [0, 1, SEG - 1, SEG, SEG + 1, SEG * 7 // 2]  # 3.5 segments
CONTEXT = E.bid_context("T-1", "1", "91350100M000100Y43", 1)


def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def keys():
    return {"signer": key(), "tender": key(), "bidder": key(), "other": key()}


def recipients(keys):
    return [E.Recipient(E.ROLE_TENDER, keys["tender"].public_key()),
            E.Recipient(E.ROLE_BIDDER, keys["bidder"].public_key())]


def seal(keys, plaintext: bytes, **options) -> bytes:
    options = {"signer": keys["signer"], "recipients": recipients(keys), "context": CONTEXT,
               "segment_size": SEG, **options}
    return E.seal_bytes(plaintext, **options)


def open_(keys, data: bytes, **options) -> bytes:
    options = {"signer_public_key": keys["signer"].public_key(), "private_keys": [keys["tender"]], **options}
    return E.open_bytes(data, **options)


def verify(keys, data: bytes, **options):
    return E.verify_bytes(data, signer_public_key=keys["signer"].public_key(), **options)


class Pipe(io.RawIOBase):
    """A non-seekable reader, like a socket or a pipe: the length cannot be known in advance."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._inner.read(min(len(b), 37))  # short reads on purpose
        b[:len(chunk)] = chunk
        return len(chunk)


# --- round trips -------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("key_mode", [E.KEY_MODE_SINGLE, E.KEY_MODE_SPLIT])
def test_round_trip(keys, size, key_mode):
    plaintext = os.urandom(size)
    data = seal(keys, plaintext, key_mode=key_mode)
    private = [keys["tender"]] if key_mode == E.KEY_MODE_SINGLE else [keys["tender"], keys["bidder"]]
    assert open_(keys, data, private_keys=private, expected_context=CONTEXT) == plaintext
    info = verify(keys, data, expected_context=CONTEXT)
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).digest()
    assert info.plaintext_length == size
    assert info.segments == max(1, -(-size // SEG))
    assert info.header.plaintext_length == size
    assert plaintext not in data or size < 4


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_unknown_length_from_a_pipe(keys, size):
    plaintext = os.urandom(size)
    out = io.BytesIO()
    info = E.seal_stream(Pipe(plaintext), out, signer=keys["signer"], recipients=recipients(keys),
                         segment_size=SEG)
    data = out.getvalue()
    assert info.header.plaintext_length is None
    assert info.size == len(data)
    sink = io.BytesIO()
    E.open_stream(Pipe(data), sink, signer_public_key=keys["signer"].public_key(), private_keys=[keys["bidder"]])
    assert sink.getvalue() == plaintext


def test_either_recipient_opens_a_single_mode_envelope(keys):
    data = seal(keys, b"price: 100")
    assert open_(keys, data, private_keys=[keys["tender"]]) == b"price: 100"
    assert open_(keys, data, private_keys=[keys["bidder"]]) == b"price: 100"


def test_default_segment_size_is_one_mebibyte(keys):
    data = E.seal_bytes(b"x" * 10, signer=keys["signer"], recipients=recipients(keys))
    assert read_header(io.BytesIO(data)).segment_size == 1 << 20


# --- every byte flipped ------------------------------------------------------------------------------

def _regions(data: bytes) -> list[tuple[str, int, int]]:
    """(name, start, end) of every field class of an envelope sealed by ``seal`` with 2 recipients."""
    header = read_header(io.BytesIO(data))
    n = len(header.context)
    core_end = FIXED_SIZE + n
    regions = [("magic", 0, 7), ("version", 7, 8), ("suite", 8, 10), ("header_length", 10, 14),
               ("key_mode", 14, 15), ("flags", 15, 16), ("segment_size", 16, 20), ("nonce_prefix", 20, 27),
               ("plaintext_length", 27, 35), ("signer_key_id", 35, 67), ("context_length", 67, 69),
               ("context", FIXED_SIZE, core_end), ("recipient_count", core_end, core_end + 1)]
    pos = core_end + 1
    for i in range(len(header.recipients)):
        regions += [(f"r{i}.role", pos, pos + 1), (f"r{i}.key_id", pos + 1, pos + 33),
                    (f"r{i}.enc_length", pos + 33, pos + 35), (f"r{i}.enc", pos + 35, pos + 100),
                    (f"r{i}.wrapped_length", pos + 100, pos + 102), (f"r{i}.wrapped", pos + 102, pos + 150)]
        pos += 150
    assert pos == header.length
    body_end = len(data) - 64
    seg = 0
    while pos < body_end:
        end = min(pos + SEG + 16, body_end)
        regions += [(f"segment{seg}.ciphertext", pos, end - 16), (f"segment{seg}.tag", end - 16, end)]
        pos, seg = end, seg + 1
    regions.append(("signature", body_end, len(data)))
    return regions


# Which error each class of flipped byte must produce, when opening with the tender key / verifying.
FORMAT = (EnvelopeFormatError,)
OPEN_EXPECT = {
    "magic": FORMAT, "version": FORMAT, "suite": (UnsupportedSuite,), "header_length": FORMAT + (EnvelopeTruncated,),
    "key_mode": FORMAT, "flags": FORMAT, "segment_size": FORMAT + (UnwrapFailed,),
    "nonce_prefix": (UnwrapFailed,), "plaintext_length": FORMAT + (UnwrapFailed,), "signer_key_id": (WrongSigner,),
    "context_length": FORMAT, "context": (ContextMismatch,), "recipient_count": FORMAT,
    "r0.role": FORMAT + (UnwrapFailed,), "r0.key_id": (NotARecipient,), "r0.enc_length": FORMAT,
    "r0.enc": (UnwrapFailed,), "r0.wrapped_length": FORMAT, "r0.wrapped": (UnwrapFailed,),
    "r1.role": FORMAT + (EnvelopeTampered,), "r1.key_id": (EnvelopeTampered,), "r1.enc_length": FORMAT,
    "r1.enc": (EnvelopeTampered,), "r1.wrapped_length": FORMAT, "r1.wrapped": (EnvelopeTampered,),
    "ciphertext": (EnvelopeTampered,), "tag": (EnvelopeTampered,), "signature": (SignatureInvalid,),
}
VERIFY_EXPECT = {**{k: (SignatureInvalid,) for k in OPEN_EXPECT},
                 "magic": FORMAT, "version": FORMAT, "suite": (UnsupportedSuite,),
                 "header_length": FORMAT + (EnvelopeTruncated,), "key_mode": FORMAT, "flags": FORMAT,
                 "segment_size": FORMAT + (SignatureInvalid, EnvelopeTampered, EnvelopeTruncated),
                 "plaintext_length": FORMAT + (EnvelopeTampered, EnvelopeTruncated),
                 "signer_key_id": (WrongSigner,), "context": (ContextMismatch,), "context_length": FORMAT,
                 "recipient_count": FORMAT, "r0.enc_length": FORMAT, "r0.wrapped_length": FORMAT,
                 "r1.enc_length": FORMAT, "r1.wrapped_length": FORMAT,
                 "r0.role": FORMAT + (SignatureInvalid,), "r1.role": FORMAT + (SignatureInvalid,)}


def _expected(table, region: str):
    return table.get(region) or table[region.split(".")[-1]]


def test_every_flipped_byte_is_detected_with_the_right_error(keys):
    data = seal(keys, os.urandom(SEG * 7 // 2))
    regions = _regions(data)
    assert [r[0] for r in regions if r[0].startswith("segment")][-1] == "segment3.tag"
    for name, start, end in regions:
        for pos in range(start, end):
            bad = bytearray(data)
            bad[pos] ^= 0x01 if pos % 2 else 0x80
            with pytest.raises(_expected(OPEN_EXPECT, name)):
                open_(keys, bytes(bad), expected_context=CONTEXT)
            with pytest.raises(_expected(VERIFY_EXPECT, name)):
                verify(keys, bytes(bad), expected_context=CONTEXT)


def test_a_flipped_segment_is_named(keys):
    data = bytearray(seal(keys, os.urandom(SEG * 3)))
    header_length = read_header(io.BytesIO(bytes(data))).length
    data[header_length + (SEG + 16) + 5] ^= 1  # inside segment 2
    with pytest.raises(EnvelopeTampered, match="Segment 2 failed authentication"):
        open_(keys, bytes(data))


# --- truncation, reordering, appending ---------------------------------------------------------------

@pytest.mark.parametrize("stated", [True, False])
def test_truncation_anywhere_is_detected(keys, stated):
    plaintext = os.urandom(SEG * 7 // 2)
    if stated:
        data = seal(keys, plaintext)
    else:
        out = io.BytesIO()
        E.seal_stream(Pipe(plaintext), out, signer=keys["signer"], recipients=recipients(keys), segment_size=SEG)
        data = out.getvalue()
    header_length = read_header(io.BytesIO(data)).length
    boundaries = [header_length + i * (SEG + 16) for i in range(4)]
    cuts = set(range(0, len(data)))
    for cut in sorted(cuts):
        with pytest.raises(EnvelopeError):
            open_(keys, data[:cut])
        with pytest.raises(EnvelopeError):
            verify(keys, data[:cut])
    if stated:  # the header states the length: truncation is named as such
        for cut in boundaries + [b + 30 for b in boundaries] + [len(data) - 1, len(data) - 64]:
            with pytest.raises(EnvelopeTruncated, match="truncated"):
                open_(keys, data[:cut])
            with pytest.raises(EnvelopeTruncated):
                verify(keys, data[:cut])


@pytest.mark.parametrize("stated", [True, False])
def test_segment_reordering_is_detected(keys, stated):
    plaintext = os.urandom(SEG * 3)
    out = io.BytesIO()
    E.seal_stream(io.BytesIO(plaintext) if stated else Pipe(plaintext), out, signer=keys["signer"],
                  recipients=recipients(keys), segment_size=SEG)
    data = out.getvalue()
    h = read_header(io.BytesIO(data)).length
    rec = SEG + 16
    s0, s1, s2 = data[h:h + rec], data[h + rec:h + 2 * rec], data[h + 2 * rec:h + 3 * rec]
    for order in ([s1, s0, s2], [s0, s2, s1], [s2, s1, s0]):
        swapped = data[:h] + b"".join(order) + data[h + 3 * rec:]
        with pytest.raises(EnvelopeTampered, match="failed authentication"):
            open_(keys, swapped)
        with pytest.raises(SignatureInvalid):
            verify(keys, swapped)
    dropped = data[:h] + s0 + s2 + data[h + 3 * rec:]  # a whole middle segment removed
    with pytest.raises((EnvelopeTampered, EnvelopeTruncated)):
        open_(keys, dropped)
    duplicated = data[:h] + s0 + s0 + s1 + s2 + data[h + 3 * rec:]
    with pytest.raises(EnvelopeTampered):
        open_(keys, duplicated)


@pytest.mark.parametrize("extra_size", [1, 15, 16, 64, SEG + 16, 3 * SEG])
def test_appended_bytes_are_detected(keys, extra_size):
    extra = b"\x00" if extra_size == 1 else os.urandom(extra_size)
    data = seal(keys, os.urandom(SEG * 7 // 2))
    with pytest.raises(EnvelopeTampered, match="appended"):
        open_(keys, data + extra)
    with pytest.raises(EnvelopeTampered, match="appended"):
        verify(keys, data + extra)
    out = io.BytesIO()
    E.seal_stream(Pipe(os.urandom(SEG * 2)), out, signer=keys["signer"], recipients=recipients(keys),
                  segment_size=SEG)
    with pytest.raises((EnvelopeTampered, SignatureInvalid, EnvelopeTruncated)):
        open_(keys, out.getvalue() + extra)
    with pytest.raises((EnvelopeTampered, SignatureInvalid, EnvelopeTruncated)):
        verify(keys, out.getvalue() + extra)


def test_a_final_segment_cannot_be_extended_with_a_forged_empty_segment(keys):
    data = seal(keys, os.urandom(SEG))
    header = read_header(io.BytesIO(data))
    fake = data[:-64] + os.urandom(16) + data[-64:]  # an extra "empty final segment"
    with pytest.raises(EnvelopeError):
        open_(keys, fake)
    assert header.plaintext_length == SEG


# --- keys and signers --------------------------------------------------------------------------------

def test_wrong_or_foreign_key_is_refused_before_decrypting(keys):
    data = seal(keys, b"secret bid")
    with pytest.raises(NotARecipient, match="not addressed to key"):
        open_(keys, data, private_keys=[keys["other"]])
    other_tender = key()  # the opening key of another tender
    with pytest.raises(NotARecipient):
        open_(keys, data, private_keys=[other_tender])
    with pytest.raises(NotARecipient, match="No private key"):
        open_(keys, data, private_keys=[])


def test_signature_by_another_key_is_refused(keys):
    data = seal(keys, b"bid")
    with pytest.raises(WrongSigner, match="signed by key"):
        open_(keys, data, signer_public_key=keys["other"].public_key())
    with pytest.raises(WrongSigner):
        E.verify_bytes(data, signer_public_key=keys["other"].public_key())
    # Someone re-signs the body with another key, leaving the header's signer id: refused.
    from crypto.suites import SUITE_P256

    forged = data[:-64] + SUITE_P256.sign_digest(keys["other"], hashlib.sha256(data[:-64]).digest())
    with pytest.raises(SignatureInvalid):
        verify(keys, forged)
    with pytest.raises(SignatureInvalid):
        open_(keys, forged)


def test_claiming_another_bidders_envelope_fails(keys):
    """A rival cannot re-sign someone's envelope as its own: the header core is bound to the wrapped key."""
    from crypto.suites import SUITE_P256

    data = bytearray(seal(keys, b"victim's bid"))
    rival = keys["other"]
    data[35:67] = SUITE_P256.key_id(rival.public_key())
    body = bytes(data[:-64])
    forged = body + SUITE_P256.sign_digest(rival, hashlib.sha256(body).digest())
    E.verify_bytes(forged, signer_public_key=rival.public_key())  # structurally fine, it is signed...
    with pytest.raises(UnwrapFailed, match="header was altered"):  # ...but it no longer opens
        E.open_bytes(forged, signer_public_key=rival.public_key(), private_keys=[keys["tender"]])


def test_high_s_signatures_are_refused(keys):
    from crypto.suites import P256_ORDER

    data = seal(keys, b"bid")
    r, s = data[-64:-32], int.from_bytes(data[-32:], "big")
    malleated = data[:-64] + r + (P256_ORDER - s).to_bytes(32, "big")
    with pytest.raises(SignatureInvalid):
        verify(keys, malleated)


def test_context_and_required_recipient_checks(keys):
    data = seal(keys, b"bid")
    with pytest.raises(ContextMismatch):
        verify(keys, data, expected_context=E.bid_context("T-1", "1", "91350100M000100Y43", 2))
    verify(keys, data, required_recipients=[E.Recipient(E.ROLE_TENDER, keys["tender"].public_key())])
    with pytest.raises(RecipientMissing, match="tender opening key"):
        verify(keys, data, required_recipients=[E.Recipient(E.ROLE_TENDER, keys["other"].public_key())])
    with pytest.raises(RecipientMissing):  # the bidder key is there, but not in the tender role
        verify(keys, data, required_recipients=[E.Recipient(E.ROLE_TENDER, keys["bidder"].public_key())])


def test_verify_checks_declared_size_and_hash(keys):
    data = seal(keys, os.urandom(100))
    info = verify(keys, data, expected_size=len(data), expected_sha256=hashlib.sha256(data).digest())
    assert info.sha256 == hashlib.sha256(data).digest()
    with pytest.raises(EnvelopeTruncated):
        verify(keys, data, expected_size=len(data) + 1)
    with pytest.raises(EnvelopeTampered, match="SHA-256"):
        verify(keys, data, expected_sha256=bytes(32))


# --- content keys and the double envelope ------------------------------------------------------------

def test_check_content_key(keys):
    data = seal(keys, os.urandom(SEG * 3))
    header = read_header(io.BytesIO(data))
    content_key = E.content_key_from(header, [keys["bidder"]])
    assert E.check_content_key(data, content_key).raw == header.raw
    assert E.check_content_key(io.BytesIO(data), content_key).raw == header.raw
    assert open_(keys, data, private_keys=[], content_key=content_key)
    with pytest.raises(WrongContentKey):
        E.check_content_key(data, os.urandom(32))
    with pytest.raises(WrongContentKey, match="32 bytes"):
        E.check_content_key(data, os.urandom(16))
    with pytest.raises(EnvelopeTampered, match="wrong content key"):
        open_(keys, data, private_keys=[], content_key=os.urandom(32))
    small = seal(keys, b"tiny")  # a single, final segment
    E.check_content_key(small, E.content_key_from(read_header(io.BytesIO(small)), [keys["tender"]]))


def test_split_mode_needs_both_halves(keys):
    plaintext = os.urandom(150)
    data = seal(keys, plaintext, key_mode=E.KEY_MODE_SPLIT)
    header = read_header(io.BytesIO(data))
    role_t, part_t = E.unwrap_key_part(header, keys["tender"])
    role_b, part_b = E.unwrap_key_part(header, keys["bidder"])
    assert (role_t, role_b) == (E.ROLE_TENDER, E.ROLE_BIDDER) and part_t != part_b
    for only in ("tender", "bidder"):
        with pytest.raises(MissingKeyPart, match="missing"):
            open_(keys, data, private_keys=[keys[only]])
        with pytest.raises(WrongContentKey):  # one half alone is not the content key
            E.check_content_key(data, part_t if only == "tender" else part_b)
    combined = bytes(a ^ b for a, b in zip(part_t, part_b, strict=True))
    E.check_content_key(data, combined)
    assert open_(keys, data, private_keys=[keys["bidder"], keys["tender"]]) == plaintext
    with pytest.raises(EnvelopeFormatError, match="Split"):
        seal(keys, b"x", key_mode=E.KEY_MODE_SPLIT,
             recipients=[E.Recipient(E.ROLE_TENDER, keys["tender"].public_key())])


def test_sealing_parameters_are_checked(keys):
    with pytest.raises(EnvelopeFormatError, match="Segment size"):
        seal(keys, b"x", segment_size=16)
    with pytest.raises(EnvelopeFormatError, match="recipients"):
        seal(keys, b"x", recipients=[])
    with pytest.raises(EnvelopeFormatError, match="same recipient"):
        seal(keys, b"x", recipients=[E.Recipient(E.ROLE_TENDER, keys["tender"].public_key())] * 2)
    with pytest.raises(TypeError, match="P-256"):
        seal(keys, b"x", signer=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(UnsupportedSuite, match="Unknown algorithm suite 9"):
        seal(keys, b"x", suite=9)
    with pytest.raises(EnvelopeError, match="fewer bytes than the stated"):
        E.seal_stream(io.BytesIO(b"abc"), io.BytesIO(), signer=keys["signer"], recipients=recipients(keys),
                      plaintext_length=4)
    with pytest.raises(EnvelopeError, match="more bytes than the stated"):
        E.seal_stream(io.BytesIO(b"abcde"), io.BytesIO(), signer=keys["signer"], recipients=recipients(keys),
                      plaintext_length=4)


def test_not_an_envelope(keys):
    for data in (b"", b"EBID", b"PK\x03\x04" + bytes(100), b"EBIDENV\x02" + bytes(100)):
        with pytest.raises((EnvelopeFormatError, EnvelopeTruncated)):
            open_(keys, data)


# --- files, memory, interoperability -----------------------------------------------------------------

def test_open_file_leaves_nothing_behind_on_error(keys, tmp_path):
    src, sealed, opened = tmp_path / "bid.zip", tmp_path / "bid.ebid", tmp_path / "out.zip"
    src.write_bytes(os.urandom(5000))
    E.seal_file(src, sealed, signer=keys["signer"], recipients=recipients(keys), segment_size=SEG)
    E.open_file(sealed, opened, signer_public_key=keys["signer"].public_key(), private_keys=[keys["tender"]])
    assert opened.read_bytes() == src.read_bytes()
    opened.unlink()
    sealed.write_bytes(sealed.read_bytes()[:-100])
    with pytest.raises(EnvelopeTruncated):
        E.open_file(sealed, opened, signer_public_key=keys["signer"].public_key(), private_keys=[keys["tender"]])
    assert not opened.exists() and not (tmp_path / "out.zip.partial").exists()


def test_sixty_four_mebibytes_stream_in_bounded_memory(keys, tmp_path):
    import tracemalloc

    src, sealed, opened = tmp_path / "big.bin", tmp_path / "big.ebid", tmp_path / "big.out"
    block = hashlib.sha256(b"block").digest() * (1 << 15)  # 1 MiB
    with open(src, "wb") as f:
        for i in range(64):
            f.write(i.to_bytes(4, "big") + block[4:])
    tracemalloc.start()
    try:
        with open(src, "rb") as r, open(sealed, "wb") as w:
            E.seal_stream(r, w, signer=keys["signer"], recipients=recipients(keys))
        seal_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with open(sealed, "rb") as r, open(opened, "wb") as w:
            info = E.open_stream(r, w, signer_public_key=keys["signer"].public_key(), private_keys=[keys["tender"]])
        open_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with open(sealed, "rb") as r:
            E.verify_stream(r, signer_public_key=keys["signer"].public_key())
        verify_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.plaintext_length == 64 << 20 and info.segments == 64
    assert max(seal_peak, open_peak, verify_peak) < 4 << 20, (seal_peak, open_peak, verify_peak)
    assert hashlib.sha256(opened.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_the_signature_verifies_with_openssl(keys, tmp_path):
    """Promise 4: an independent tool checks the bidder's signature (ECDSA-SHA256 over header||segments)."""
    import shutil
    import subprocess

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import utils

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    data = seal(keys, os.urandom(500))
    (tmp_path / "body").write_bytes(data[:-64])
    r, s = int.from_bytes(data[-64:-32], "big"), int.from_bytes(data[-32:], "big")
    (tmp_path / "sig.der").write_bytes(utils.encode_dss_signature(r, s))
    (tmp_path / "pub.pem").write_bytes(keys["signer"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    run = subprocess.run(["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "body"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and "Verified OK" in run.stdout
    (tmp_path / "body").write_bytes(data[:-65] + b"\x00")
    run = subprocess.run(["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "body"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0


class Trickle(io.RawIOBase):
    """A raw writer that takes at most 7 bytes per call, as raw streams may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        chunk = bytes(b[:7])
        self.data += chunk
        return len(chunk)


def test_raw_writers_that_take_part_of_a_buffer(keys):
    plaintext = os.urandom(SEG * 2 + 5)
    sealed = Trickle()
    E.seal_stream(Pipe(plaintext), sealed, signer=keys["signer"], recipients=recipients(keys), segment_size=SEG)
    opened = Trickle()
    E.open_stream(Pipe(bytes(sealed.data)), opened, signer_public_key=keys["signer"].public_key(),
                  private_keys=[keys["tender"]])
    assert bytes(opened.data) == plaintext
