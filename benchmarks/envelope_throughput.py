"""Envelope throughput against the shell baseline `openssl enc -aes-256-ctr` + `sha256sum`.

    .venv/bin/python benchmarks/envelope_throughput.py [MiB] [rounds]

Seals, verifies (no key) and opens a file of MiB mebibytes (default 256) with 1 MiB segments, and
times the baseline on the same file in the same shell: AES-256-CTR encryption to a file, then a
SHA-256 pass over that ciphertext, which is the work a seal has to do at the least (a seal also
authenticates every segment and signs). coreutils' sha256sum is slow on some systems, so the
baseline is also timed with `openssl dgst -sha256`. Rounds alternate; the best round counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from crypto import envelope  # noqa: E402


def main(mib: int = 256, rounds: int = 3) -> None:
    signer, tender = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    recipients = [envelope.Recipient(envelope.ROLE_TENDER, tender.public_key())]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        src, sealed, opened, ctr = (Path(tmp) / n for n in ("plain.bin", "plain.ebid", "plain.out", "plain.ctr"))
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        best: dict[str, float] = {}

        def timed(name: str, fn) -> None:
            start = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)

        def baseline(hasher: str) -> None:
            key, iv = os.urandom(32).hex(), os.urandom(16).hex()
            subprocess.run(f"openssl enc -aes-256-ctr -K {key} -iv {iv} -in {src} -out {ctr} && {hasher} {ctr}",
                           shell=True, check=True, stdout=subprocess.DEVNULL)

        def seal() -> None:
            with open(src, "rb") as r, open(sealed, "wb") as w:
                envelope.seal_stream(r, w, signer=signer, recipients=recipients)

        def verify() -> None:
            with open(sealed, "rb") as r:
                envelope.verify_stream(r, signer_public_key=signer.public_key())

        def open_() -> None:
            with open(sealed, "rb") as r, open(opened, "wb") as w:
                envelope.open_stream(r, w, signer_public_key=signer.public_key(), private_keys=[tender])

        for _ in range(rounds):
            timed("openssl enc -aes-256-ctr + sha256sum", lambda: baseline("sha256sum"))
            timed("openssl enc -aes-256-ctr + openssl dgst", lambda: baseline("openssl dgst -sha256"))
            timed("seal_stream", seal)
            timed("verify_stream (no key)", verify)
            timed("open_stream", open_)
        print(f"{mib} MiB, best of {rounds} rounds, load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
        for name, seconds in best.items():
            print(f"  {name:40s} {seconds:7.3f} s  {mib / seconds:8.0f} MiB/s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
