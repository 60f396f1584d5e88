"""Deadline surge, part 2: the load generator (asyncio + aiohttp, loopback only).

Every bidder makes a bounded, fixed sequence of requests at its scheduled start and then stops: no
retries, no polling loops, a timeout on every request and on the whole run. Against ebid, as the real
clients do: an envelope that fits one request (``max_chunk``, 32 MiB) is sent whole,
``POST /api/tenders/<t>/lots/<l>/bids?sha256=`` (the signed receipt); a larger one, or every one with
``path="resumable"``, goes ``POST /api/tenders/<t>/lots/<l>/uploads`` (size, SHA-256),
``PUT /api/uploads/<id>?offset=0`` (the envelope in one chunk), ``POST /api/uploads/<id>/finalize``.
Against the baseline: one ``PUT /upload/<name>`` of the same bytes. Request ``k`` of bidder ``i`` goes
to server process ``(i + k) mod n``, so a session's requests cross processes. Latency is measured from
the first byte of the bidder's first request to the last byte of the answer that completes it (the
receipt, or the baseline's 201).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

MAX_SINGLE = 32 << 20  # the server's max_chunk: larger envelopes take the resumable path


@dataclass(frozen=True)
class Job:
    bidder: int
    token: str
    path: Path
    sha256: str
    size: int
    start: float  # seconds after t0


@dataclass
class Outcome:
    bidder: int
    ok: bool = False
    step: str = ""  # the step that failed (create, put, finalize) or "done"
    status: int | None = None
    code: str | None = None
    message: str | None = None
    started: float = 0.0  # seconds after t0 (actual)
    latency: float | None = None  # first request's start to receipt
    finalize_s: float | None = None
    sent_at: float = 0.0  # wall clock of the first request (time.time())
    answered_at: float = 0.0  # wall clock of the receipt or failure
    body: dict[str, Any] = field(default_factory=dict)


def schedule(n: int, scenario: str, window: float, seed: int) -> list[float]:
    """Start offsets: uniform over [0, window) for ``spread``; all at 0 for ``burst``."""
    if scenario == "burst":
        return [0.0] * n
    rng = random.Random(seed)
    return sorted(rng.uniform(0, window) for _ in range(n))


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = await resp.json(content_type=None)
    except (aiohttp.ContentTypeError, ValueError):
        return {"message": (await resp.text())[:200]}
    return data if isinstance(data, dict) else {"data": data}


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def _body_at(job: Job, t0: float) -> bytes:
    """Read the envelope shortly before the job's start (not all 300 at once), then wait for the start."""
    await _wait_until(t0, job.start - 1.5)
    body = await asyncio.to_thread(_read, job.path)
    await _wait_until(t0, job.start)
    return body


async def _wait_until(t0: float, offset: float) -> None:
    delay = t0 + offset - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _app_bidder(session: aiohttp.ClientSession, job: Job, bases: list[str], tender_id: int, lot_id: int,
                      t0: float, path: str = "single") -> Outcome:
    out = Outcome(job.bidder)
    body = await _body_at(job, t0)
    headers = {"Authorization": f"Bearer {job.token}", "Accept-Language": "en"}
    n = len(bases)
    begin = time.perf_counter()
    out.started, out.sent_at = time.monotonic() - t0, time.time()
    try:
        if path == "single" and job.size <= MAX_SINGLE:
            out.step = "single"
            async with session.post(f"{bases[job.bidder % n]}/api/tenders/{tender_id}/lots/{lot_id}/bids",
                                    params={"sha256": job.sha256}, data=body,
                                    headers={**headers, "Content-Type": "application/octet-stream"}) as resp:
                data = await _json(resp)
                if resp.status != 201:
                    return _failed(out, resp.status, data)
            end = time.perf_counter()
            out.ok, out.step, out.status, out.body = True, "done", 201, data
            out.latency, out.finalize_s, out.answered_at = end - begin, end - begin, time.time()
            return out
        out.step = "create"
        async with session.post(f"{bases[job.bidder % n]}/api/tenders/{tender_id}/lots/{lot_id}/uploads",
                                json={"size": job.size, "sha256": job.sha256}, headers=headers) as resp:
            data = await _json(resp)
            if resp.status != 201:
                return _failed(out, resp.status, data)
        upload_id = data["id"]
        out.step = "put"
        async with session.put(f"{bases[(job.bidder + 1) % n]}/api/uploads/{upload_id}?offset=0", data=body,
                               headers={**headers, "Content-Type": "application/octet-stream"}) as resp:
            data = await _json(resp)
            if resp.status != 200:
                return _failed(out, resp.status, data)
        out.step = "finalize"
        fin = time.perf_counter()
        async with session.post(f"{bases[(job.bidder + 2) % n]}/api/uploads/{upload_id}/finalize",
                                headers=headers) as resp:
            data = await _json(resp)
            if resp.status != 201:
                return _failed(out, resp.status, data)
        end = time.perf_counter()
        out.ok, out.step, out.status, out.body = True, "done", 201, data
        out.latency, out.finalize_s, out.answered_at = end - begin, end - fin, time.time()
    except (TimeoutError, aiohttp.ClientError) as exc:
        out.code, out.message, out.answered_at = "transport", f"{type(exc).__name__}: {exc}", time.time()
    return out


def _failed(out: Outcome, status: int, data: dict[str, Any]) -> Outcome:
    out.status, out.code, out.message = status, data.get("code"), str(data.get("message"))[:300]
    out.answered_at = time.time()
    return out


async def _baseline_bidder(session: aiohttp.ClientSession, job: Job, bases: list[str], run_id: str,
                           t0: float) -> Outcome:
    out = Outcome(job.bidder)
    body = await _body_at(job, t0)
    begin = time.perf_counter()
    out.started, out.sent_at = time.monotonic() - t0, time.time()
    out.step = "put"
    try:
        async with session.put(f"{bases[job.bidder % len(bases)]}/upload/{run_id}b{job.bidder:04d}", data=body,
                               headers={"Content-Type": "application/octet-stream"}) as resp:
            data = await _json(resp)
            if resp.status != 201:
                return _failed(out, resp.status, data)
        end = time.perf_counter()
        out.ok, out.step, out.status, out.body = True, "done", 201, data
        out.latency, out.answered_at = end - begin, time.time()
    except (TimeoutError, aiohttp.ClientError) as exc:
        out.code, out.message, out.answered_at = "transport", f"{type(exc).__name__}: {exc}", time.time()
    return out


async def _run(make, jobs: list[Job], t0: float, request_timeout: float, run_timeout: float) -> list[Outcome]:
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)  # one connection per request, as separate bidders have
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = [asyncio.ensure_future(make(session, job, t0)) for job in jobs]
        done, pending = await asyncio.wait(tasks, timeout=run_timeout)
        for task in pending:  # the run is bounded: whatever is still waiting is cut off and reported
            task.cancel()
        outcomes = []
        for job, task in zip(jobs, tasks, strict=True):
            if task in done and not task.cancelled() and task.exception() is None:
                outcomes.append(task.result())
            else:
                outcomes.append(Outcome(job.bidder, step="cut", code="run_timeout",
                                        message=repr(task.exception()) if task in done else "cut off"))
        return outcomes


def run_app(jobs: list[Job], bases: list[str], tender_id: int, lot_id: int, t0: float, *,
            request_timeout: float = 120.0, run_timeout: float = 300.0, path: str = "single") -> list[Outcome]:
    """Submit every job against ebid (``path``: single or resumable); ``t0`` is the time.monotonic() of offset 0."""
    async def make(session, job, t0):
        return await _app_bidder(session, job, bases, tender_id, lot_id, t0, path)
    return asyncio.run(_run(make, jobs, t0, request_timeout, run_timeout + max(j.start for j in jobs)))


def run_baseline(jobs: list[Job], bases: list[str], run_id: str, t0: float, *,
                 request_timeout: float = 120.0, run_timeout: float = 300.0) -> list[Outcome]:
    """Stream every job's bytes to the bare baseline endpoint."""
    async def make(session, job, t0):
        return await _baseline_bidder(session, job, bases, run_id, t0)
    return asyncio.run(_run(make, jobs, t0, request_timeout, run_timeout + max(j.start for j in jobs)))


def percentile(values: list[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
