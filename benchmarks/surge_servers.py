"""Deadline surge: the gunicorn processes (one single-worker gthread gunicorn per port), started and
stopped by their own process ids, with CPU time and peak RSS read from /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_ports(count: int) -> list[int]:
    """``count`` loopback ports free right now (the OS picks them)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


class Servers:
    """One gunicorn process per loopback port in ``ports``."""

    def __init__(self, name: str, ports: list[int], threads: int, env: dict[str, str], log_dir: Path,
                 app: str, chdir: Path, ready_path: str) -> None:
        self.name, self.ports, self.threads, self.env = name, ports, threads, env
        self.log_dir, self.app, self.chdir, self.ready_path = log_dir, app, chdir, ready_path
        self.procs: list[subprocess.Popen] = []

    @property
    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.ports]

    def start(self, ready_timeout: float = 60.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        for port in self.ports:
            log = open(self.log_dir / f"{self.name}-{port}.log", "ab")  # noqa: SIM115 (closed with the process)
            self.procs.append(subprocess.Popen(
                [str(gunicorn), "-w", "1", "-k", "gthread", "--threads", str(self.threads), "-b", f"127.0.0.1:{port}",
                 "--timeout", "120", "--graceful-timeout", "10", "--backlog", "2048", "--log-level", "warning",
                 "--chdir", str(self.chdir), self.app], env=self.env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + ready_timeout
        for port, proc in zip(self.ports, self.procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{self.name} on port {port} exited ({proc.returncode}); see "
                                       f"{self.log_dir / f'{self.name}-{port}.log'}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{self.ready_path}", timeout=5) as resp:
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} on port {port} not ready after {ready_timeout:.0f} s")
                time.sleep(0.25)

    def _pids(self) -> list[int]:
        pids = []
        for proc in self.procs:
            pids += [proc.pid, *_children(proc.pid)]
        return pids

    def usage(self, *, reset: bool = False, since: dict | None = None) -> dict:
        """CPU seconds of all server processes (minus ``since``) and the workers' peak RSS."""
        pids = self._pids()
        cpu = sum(_cpu_seconds(p) for p in pids)
        workers = [c for proc in self.procs for c in _children(proc.pid)]
        if reset:
            for pid in workers:
                _reset_peak(pid)
        out = {"cpu_s": cpu - (since["cpu_total_s"] if since else 0.0), "cpu_total_s": cpu,
               "worker_peak_rss_mib": [round(_peak_rss_mib(p), 1) for p in workers]}
        return out

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for child in _children(proc.pid):  # the worker, then its master
                    os.kill(child, signal.SIGKILL)
                proc.kill()
                proc.wait(timeout=10)
        self.procs = []
