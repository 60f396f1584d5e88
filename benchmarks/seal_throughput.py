"""Seal, open and verify throughput of sealed-bid envelopes against an OpenSSL shell baseline.

    .venv/bin/python benchmarks/seal_throughput.py                  # 1, 10, 100, 1000 MiB, 3 pairs
    .venv/bin/python benchmarks/seal_throughput.py --quick          # 1 and 10 MiB (what the test runs)
    .venv/bin/python benchmarks/seal_throughput.py --sizes 100 --pairs 5 --json out.json

For every size a random plaintext (incompressible, like the ZIP a bidder seals) is written to a temp
dir. Each *pair* times, in the same run and alternating which goes first:

* the baseline (PERFORMANCE.md): ``openssl enc -aes-256-ctr -K .. -iv .. -in plain -out ctr`` then
  ``sha256sum ctr``: encryption to disk plus one SHA-256 pass, the least a seal must do. A stricter
  baseline with ``openssl dgst -sha256`` instead of coreutils' ``sha256sum`` is timed too (coreutils may
  lack the SHA extensions that OpenSSL uses);
* ``seal_file`` (what the bidder's client does: two HPKE wraps, STREAM AES-256-GCM in 1 MiB segments,
  ECDSA over header and ciphertext, fsync and atomic rename), ``open_file`` with the tender opening key
  (custodian path; every tag, the signature, fsync) and ``verify_stream`` without a key (what the
  server does on finalize: structure, signature, size and SHA-256);
* ``seal_stream`` / ``open_stream`` into a writer that drops the output: the cryptography and the
  reading alone, so that the cost of writing the output to disk can be told apart.

Each operation runs in its own worker process that times itself and reports its peak RSS, reset
just before the operation (``/proc/self/clear_refs``), so memory growth with file size is visible.
The ratio is application throughput / baseline throughput of the same pair (>= 1.0 is the target);
medians over the pairs are printed and, with ``--json``, written out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MIB = 1 << 20
OPS = ("seal", "open", "verify", "seal-null", "open-null")
LABELS = {"seal": "seal_file", "open": "open_file", "verify": "verify_stream (no key)",
          "seal-null": "seal_stream to no file", "open-null": "open_stream to no file"}
BASELINES = ("openssl enc + sha256sum", "openssl enc + openssl dgst")


# --- worker (one operation per process) ----------------------------------------------------------

def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM (peak RSS) to the current RSS
        return True
    except OSError:
        return False


def _load_keys(keys: Path):
    from cryptography.hazmat.primitives import serialization

    def private(name: str):
        return serialization.load_pem_private_key((keys / name).read_bytes(), password=None)
    return private("bidder.pem"), private("tender.pem")


def worker(op: str, src: Path, dst: Path, keys: Path) -> dict:
    """Run one operation after a warm-up; return its time and memory (KiB)."""
    from crypto import envelope

    bidder, tender = _load_keys(keys)
    recipients = [envelope.Recipient(envelope.ROLE_TENDER, tender.public_key()),
                  envelope.Recipient(envelope.ROLE_BIDDER, bidder.public_key())]
    context = envelope.bid_context("BENCH-2026-001", "01", "91370200MA0000001X", 1)
    # warm-up: first-use costs of the process (imports, tables), not of the file
    warm = envelope.seal_bytes(b"warm-up", signer=bidder, recipients=recipients, context=context)
    envelope.open_bytes(warm, signer_public_key=bidder.public_key(), private_keys=[tender])
    peak_reset = _reset_peak()
    rss_before = _status_kib("VmRSS")
    start = time.perf_counter()
    if op == "seal":
        info = envelope.seal_file(src, dst, signer=bidder, recipients=recipients, context=context)
    elif op == "open":
        info = envelope.open_file(src, dst, signer_public_key=bidder.public_key(), private_keys=[tender],
                                  expected_context=context)
    elif op == "seal-null":
        with open(src, "rb") as fh:
            info = envelope.seal_stream(fh, _Null(), signer=bidder, recipients=recipients, context=context)
    elif op == "open-null":
        with open(src, "rb") as fh:
            info = envelope.open_stream(fh, _Null(), signer_public_key=bidder.public_key(), private_keys=[tender],
                                        expected_context=context)
    else:
        with open(src, "rb") as fh:
            info = envelope.verify_stream(fh, signer_public_key=bidder.public_key(), expected_context=context,
                                          expected_size=src.stat().st_size)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") if peak_reset else _rusage_peak_kib()
    return {"op": op, "seconds": seconds, "rss_before_kib": rss_before, "peak_rss_kib": peak,
            "extra_kib": max(peak - rss_before, 0), "peak_reset": peak_reset, "bytes": info.plaintext_length}


class _Null:
    """A writer that drops what it gets: the crypto and the reading without the output's disk writes."""

    def write(self, data) -> int:
        return len(data)


def _rusage_peak_kib() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- driver --------------------------------------------------------------------------------------

def _write_keys(keys: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from crypto.keys import generate_private_key

    keys.mkdir()
    for name in ("bidder.pem", "tender.pem"):
        pem = generate_private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption())
        (keys / name).write_bytes(pem)


def _write_plaintext(path: Path, mib: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(mib):
            fh.write(os.urandom(MIB))
        fh.flush()
        os.fsync(fh.fileno())  # no writeback of the plaintext during the first timings


def _run_worker(op: str, src: Path, dst: Path, keys: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", op, str(src), str(dst), str(keys)],
                         check=True, capture_output=True, text=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _baseline(src: Path, out: Path, hasher: list[str]) -> float:
    key, iv = os.urandom(32).hex(), os.urandom(16).hex()
    start = time.perf_counter()
    subprocess.run(["openssl", "enc", "-aes-256-ctr", "-K", key, "-iv", iv, "-in", str(src), "-out", str(out)],
                   check=True, timeout=1800)
    subprocess.run([*hasher, str(out)], check=True, stdout=subprocess.DEVNULL, timeout=1800)
    seconds = time.perf_counter() - start
    out.unlink()
    return seconds


def _pair(tmp: Path, src: Path, keys: Path, app_first: bool) -> dict:
    sealed, opened, ctr = tmp / "plain.ebid", tmp / "plain.out", tmp / "plain.ctr"

    def baselines() -> dict:
        return {BASELINES[0]: _baseline(src, ctr, ["sha256sum"]),
                BASELINES[1]: _baseline(src, ctr, ["openssl", "dgst", "-sha256"])}

    def application() -> dict:
        results = {"seal": _run_worker("seal", src, sealed, keys)}
        results["open"] = _run_worker("open", sealed, opened, keys)
        opened.unlink()
        results["verify"] = _run_worker("verify", sealed, Path(os.devnull), keys)
        results["open-null"] = _run_worker("open-null", sealed, Path(os.devnull), keys)
        sealed.unlink()
        results["seal-null"] = _run_worker("seal-null", src, Path(os.devnull), keys)
        return results

    if app_first:
        app = application()
        base = baselines()
    else:
        base = baselines()
        app = application()
    return {"baseline": base, "app": app}


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def measure(sizes: list[int], pairs: int, workdir: Path | None) -> dict:
    """Run the pairs for every size; return the raw pairs and the medians."""
    results = []
    with tempfile.TemporaryDirectory(prefix="ebid-seal-bench-", dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        need = 3 * max(sizes) * MIB + 256 * MIB  # plaintext, envelope, and one output at a time
        if _free_bytes(tmp) < need:
            raise SystemExit(f"{tmp}: {_free_bytes(tmp) // MIB} MiB free, {need // MIB} MiB needed for "
                             f"{max(sizes)} MiB files; choose another --dir or smaller --sizes")
        keys = tmp / "keys"
        _write_keys(keys)
        for mib in sizes:
            src = tmp / "plain.bin"
            _write_plaintext(src, mib)
            load_before = os.getloadavg()[0]
            raw = [_pair(tmp, src, keys, app_first=bool(i % 2)) for i in range(pairs)]
            src.unlink()
            results.append(summarise(mib, raw, load_before, os.getloadavg()[0]))
            print_size(results[-1])
    return {"machine": machine(), "pairs": pairs, "sizes": results}


def summarise(mib: int, raw: list[dict], load_before: float, load_after: float) -> dict:
    med = statistics.median
    summary: dict = {"mib": mib, "load_before": load_before, "load_after": load_after, "pairs": raw}
    for name in BASELINES:
        secs = [p["baseline"][name] for p in raw]
        summary.setdefault("baseline", {})[name] = {"median_s": med(secs), "mib_s": mib / med(secs)}
    for op in OPS:
        secs = [p["app"][op]["seconds"] for p in raw]
        ratios = {name: med(p["baseline"][name] / p["app"][op]["seconds"] for p in raw) for name in BASELINES}
        summary.setdefault("app", {})[op] = {
            "median_s": med(secs), "mib_s": mib / med(secs), "ratio": ratios,
            "peak_rss_mib": max(p["app"][op]["peak_rss_kib"] for p in raw) / 1024,
            "extra_rss_mib": max(p["app"][op]["extra_kib"] for p in raw) / 1024}
    return summary


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    import cryptography
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "cryptography": cryptography.__version__, "openssl": openssl,
            "memory_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MIB}


def print_size(s: dict) -> None:
    print(f"\n{s['mib']} MiB, {len(s['pairs'])} pairs, load average {s['load_before']:.2f} -> {s['load_after']:.2f}")
    for name, b in s["baseline"].items():
        print(f"  {'baseline: ' + name:44s} {b['median_s']:8.3f} s {b['mib_s']:8.0f} MiB/s")
    for op, a in s["app"].items():
        r = a["ratio"]
        print(f"  {LABELS[op]:44s} {a['median_s']:8.3f} s "
              f"{a['mib_s']:8.0f} MiB/s  ratio {r[BASELINES[0]]:5.2f} (vs dgst {r[BASELINES[1]]:5.2f})  "
              f"peak RSS {a['peak_rss_mib']:6.1f} MiB, +{a['extra_rss_mib']:5.1f} MiB during the op")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,10,100,1000", help="comma-separated sizes in MiB")
    parser.add_argument("--pairs", type=int, default=3, help="alternating baseline/application pairs per size")
    parser.add_argument("--quick", action="store_true", help="1 and 10 MiB, 3 pairs")
    parser.add_argument("--dir", type=Path, default=None, help="where the temp dir goes (default: system temp)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--worker", nargs=4, metavar=("OP", "SRC", "DST", "KEYS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        op, src, dst, keys = args.worker
        if op not in OPS:
            parser.error(f"unknown operation {op}")
        print(json.dumps(worker(op, Path(src), Path(dst), Path(keys))))
        return 0
    sizes = [1, 10] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.pairs < 1:
        parser.error("give sizes of at least 1 MiB and at least one pair")
    for tool in ("openssl", "sha256sum"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed; the baseline needs it")
    started = time.time()
    result = measure(sizes, args.pairs, args.dir)
    result["wall_s"] = time.time() - started
    print(f"\nmachine: {result['machine']}, {result['wall_s']:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
