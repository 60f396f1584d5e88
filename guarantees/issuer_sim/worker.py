"""The reference issuer's background worker: runs due jobs and delivers callbacks to the platform.

One daemon thread. Callbacks are signed at each attempt (fresh nonce and timestamp) and POSTed to the
platform's ``/api/guarantees/callbacks``; connection errors, timeouts and 5xx answers are retried with
exponential backoff (``retry_base`` doubling up to ``retry_max``, at most ``max_attempts``); a 409 means
the platform refuses the callback as contradicting its state and is not retried. A callback waits for
every earlier callback of the same order, so ``Result`` always arrives before ``Letter``.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from datetime import timedelta

from flask import Flask

from core.clock import now
from guarantees import protocol
from guarantees.issuer_sim.service import IssuerService

log = logging.getLogger("guarantees.issuer_sim")

class DeliveryFailed(Exception):
    """The platform could not be reached or answered with an error worth retrying."""


class Worker:
    """Runs the simulator's jobs in a background thread (start/stop; ``wake`` after queueing work)."""

    def __init__(self, app: Flask, service: IssuerService):
        self.app, self.service = app, service
        self.config, self.store = service.config, service.store
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=f"issuer-sim-{self.config.code}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    ran = self.run_due()
            except Exception:  # never let the thread die; the job keeps its state and is retried
                log.exception("issuer simulator worker loop failed")
                ran = 0
            if not ran:
                self._wake.wait(self.config.poll_interval)
                self._wake.clear()

    def run_due(self) -> int:
        """Run the jobs that are due now; returns how many ran."""
        jobs = self.store.due_jobs(now())
        for job in jobs:
            if self._stop.is_set():
                break
            self._run(job)
        return len(jobs)

    def _run(self, job) -> None:
        payload = json.loads(job["payload"])
        try:
            if job["kind"] == "callback":
                self._deliver(job, payload)
                return
            if job["kind"] == "underwrite":
                self.service.underwrite(job["order_no"])
            elif job["kind"] == "decide_claim":
                self.service.decide_claim(payload["claim_no"])
            elif job["kind"] == "reveal":
                self.service.reveal(job["order_no"])
            else:
                self.store.finish_job(job["id"], "failed", f"unknown job kind {job['kind']}")
                return
            self.store.finish_job(job["id"], "done")
        except DeliveryFailed as exc:
            self._retry(job, str(exc))
        except Exception as exc:
            log.exception("issuer simulator job %s (%s) failed", job["id"], job["kind"])
            self._retry(job, f"{type(exc).__name__}: {exc}")

    def _retry(self, job, error: str) -> None:
        attempts = job["attempts"] + 1
        if attempts >= self.config.max_attempts:
            log.warning("giving up job %s (%s %s) after %s attempts: %s", job["id"], job["kind"], job["order_no"],
                        attempts, error)
            self.store.finish_job(job["id"], "failed", error)
            return
        backoff = min(self.config.retry_max, self.config.retry_base * 2 ** (attempts - 1))
        self.store.retry_job(job["id"], now() + timedelta(seconds=backoff), error)

    def _deliver(self, job, payload: dict) -> None:
        msg = self.service.sign(payload["type"], job["order_no"], payload["data"])
        request = urllib.request.Request(self.config.callback_url, data=protocol.encode(msg), method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=self.config.callback_timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            body = exc.read(500).decode("utf-8", "replace")
            if status == 409:
                log.warning("platform refused %s for %s: %s", payload["type"], job["order_no"], body)
                self.store.finish_job(job["id"], "refused", f"409 {body}")
                return
            raise DeliveryFailed(f"HTTP {status} {body}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryFailed(f"platform unreachable: {getattr(exc, 'reason', exc)}") from None
        if 200 <= status < 300:
            self.store.finish_job(job["id"], "done")
        else:
            raise DeliveryFailed(f"HTTP {status}")
