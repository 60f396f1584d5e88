"""False-positive and detection rates of the collusion screens (串通投标预警) on simulated tenders.

    .venv/bin/python benchmarks/collusion_fpr.py                     # 10,000 clean tenders, 500 planted per screen
    .venv/bin/python benchmarks/collusion_fpr.py --tenders 2000 --seed 7 --json fpr.json

Clean tenders come from ``tests.supervision.clean_tenders.random_clean_tender`` (independent bidders); a
planted tender (``planted_tender``) carries one sign of one screen. For every screen the table shows how
many clean tenders it applies to (enough priced bids), how many it fired on, the false-positive rate with
its 95 % Wilson interval, and the share of planted tenders where it found its sign. ``--json`` appends one
JSON line with the same numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from supervision.screens import CODES, LEGAL_CODES, ScreenParams, screen_tender  # noqa: E402
from tests.supervision.clean_tenders import planted_tender, random_clean_tender  # noqa: E402


def wilson(hits: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default)."""
    if total == 0:
        return 0.0, 1.0
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def minimum_bids(code: str, params: ScreenParams) -> int:
    return {"low_cv": params.cv_min_bids, "relative_distance": params.rd_min_bids,
            "kurtosis": max(4, params.kurtosis_min_bids), "skewness": max(3, params.skewness_min_bids),
            "regular_spacing": params.spacing_min_bids}.get(code, 2)


def run(tenders: int, planted: int, seed: int) -> dict:
    params = ScreenParams()
    rng = random.Random(seed)
    fired, applicable, sizes = Counter(), Counter(), Counter()
    started = time.perf_counter()
    for _ in range(tenders):
        bids = random_clean_tender(rng)
        sizes[len(bids)] += 1
        for code in CODES:
            applicable[code] += len(bids) >= minimum_bids(code, params)
        fired.update({f.code for f in screen_tender(bids, params)})
    clean_seconds = time.perf_counter() - started
    found = Counter()
    for code in CODES:
        for _ in range(planted):
            found[code] += any(f.code == code for f in screen_tender(planted_tender(rng, code), params))
    rows = []
    for code in CODES:
        low, high = wilson(fired[code], applicable[code])
        rows.append({"code": code, "kind": "legal" if code in LEGAL_CODES else "statistical",
                     "applicable": applicable[code], "fired": fired[code],
                     "fpr": fired[code] / applicable[code] if applicable[code] else 0.0,
                     "fpr_low": low, "fpr_high": high, "planted": planted, "detected": found[code],
                     "detection": found[code] / planted if planted else 0.0})
    return {"tenders": tenders, "seed": seed, "bids_per_tender": dict(sorted(sizes.items())),
            "seconds_per_clean_tender": clean_seconds / tenders, "rows": rows,
            "python": platform.python_version(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def table(result: dict) -> str:
    lines = [f"{result['tenders']:,} clean tenders (seed {result['seed']}), "
             f"{result['rows'][0]['planted']} planted per screen; "
             f"{result['seconds_per_clean_tender'] * 1000:.1f} ms per clean tender (generation included)", "",
             "| screen | kind | clean tenders screened | fired | FPR | 95 % Wilson CI | detected (planted) |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| `{r['code']}` | {r['kind']} | {r['applicable']:,} | {r['fired']} | {r['fpr'] * 100:.2f} % "
                     f"| {r['fpr_low'] * 100:.2f}–{r['fpr_high'] * 100:.2f} % "
                     f"| {r['detection'] * 100:.1f} % ({r['detected']}/{r['planted']}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenders", type=int, default=10_000, help="clean tenders (default 10,000)")
    parser.add_argument("--planted", type=int, default=500, help="planted tenders per screen (default 500)")
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--json", type=Path, help="append the result as one JSON line to this file")
    args = parser.parse_args(argv)
    result = run(args.tenders, args.planted, args.seed)
    print(table(result))
    if args.json:
        with args.json.open("a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
