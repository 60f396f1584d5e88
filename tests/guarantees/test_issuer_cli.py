"""``ebid issuer-sim``: the keys command, and the simulator run by the console command over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from core.clock import now
from core.config import Settings
from guarantees import protocol
from guarantees.keys import platform_key as platform_signing_key
from tests.guarantees.sim_support import FakePlatform, http, order, serve, stop, wait_for


def test_init_makes_the_keys_once_and_prints_where_they_are(app, tmp_path):
    runner = app.test_cli_runner()
    args = ["issuer-sim", "init", "--code", "BANK7", "--name", "第七银行", "--data-dir", str(tmp_path / "b7"),
            "--uscc", "91110000100000000L"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    keys = tmp_path / "b7" / "keys"
    assert f"message certificate: {keys / 'message.cert.pem'}" in result.output
    assert f"issuer CA (trust root of its letters): {keys / 'ca.cert.pem'}" in result.output
    assert "--uscc 91110000100000000L --kind bank" in result.output and "keys created" in result.output
    assert "PRIVATE KEY" not in result.output
    before = (keys / "ca.cert.pem").read_bytes()
    again = runner.invoke(args=args)
    assert again.exit_code == 0 and "already present" in again.output
    assert (keys / "ca.cert.pem").read_bytes() == before


def test_init_refuses_a_bad_code(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["issuer-sim", "init", "--code", "BANK 1", "--name", "x",
                                                "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "code must be" in result.output
    assert not (tmp_path / "keys").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_console_command_runs_the_simulator_over_http(tmp_path):
    """Run ``ebid issuer-sim`` as a process; it trusts this environment's platform certificate by default."""
    data_dir = tmp_path / "platform"
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'ebid.sqlite3'}", secret_key="t")
    signing_key = platform_signing_key(settings)  # the platform's key in EBID_DATA_DIR, as a demo has it
    platform = FakePlatform()
    platform.url, server, thread = serve(platform)
    port = _free_port()
    env = {**os.environ, "EBID_DATA_DIR": str(data_dir), "EBID_SECRET_KEY": "t"}
    env.pop("EBID_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "ebid.cli", "issuer-sim", "--code", "BANK1", "--name", "示范银行", "--port", str(port),
         "--platform-url", platform.url, "--locale", "en", "--limit", "200000"],
        cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            try:
                return http("GET", base + "/")
            except OSError:
                return None
        status, about = wait_for(up, timeout=60, what="the simulator to listen")
        assert status == 200 and about["code"] == "BANK1"
        assert (data_dir / "issuers" / "BANK1" / "keys" / "message.cert.pem").read_text() == about["message_certificate"]
        platform.issuer_key = protocol.public_key_from_pem(about["message_certificate"])
        for order_no, amount in (("CLI-1", "150000.00"), ("CLI-2", "250000.00")):
            msg = protocol.sign_message(signing_key, protocol.ORDER_APPLY, "ebid-platform", order_no,
                                        order(order_no, amount=amount), now=now())
            assert http("POST", base + "/orders", protocol.encode(msg)) == (202, {"accepted": True})
        wait_for(lambda: platform.got("CLI-1", protocol.LETTER), timeout=30, what="the letter")
        rejected = wait_for(lambda: platform.got("CLI-2", protocol.RESULT), timeout=30, what="the refusal")[0]
        assert rejected.data["status"] == "rejected" and "200,000.00" in rejected.data["reason"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output = process.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
        stop(server, thread)
    assert f"Issuer BANK1 listening on {base}" in output
    assert "PRIVATE KEY" not in output
