"""``ebid client report sign`` against a served platform, and ``ebid evaluation verify-report`` on the result."""

from __future__ import annotations

from click.testing import CliRunner

from core.db import db
from core.identity.access import actor_for
from core.identity.ca import load_ca_certificate
from core.identity.tokens import issue_api_token
from crypto import keys
from ebid.cli_evaluation import evaluation_cli
from evaluation import report as reports
from evaluation.result_models import ReportStatus
from tests.client.conftest import FAST_KDF, KEY_PASSPHRASE
from tests.evaluation.results_support import complete
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)


def _material(tmp_path, person, certify, n: int):
    key = keys.generate_private_key()
    _key, row = certify(person=person, key=key)
    db.session.commit()
    key_path, cert_path = tmp_path / f"m{n}.key", tmp_path / f"m{n}.cert.pem"
    key_path.write_bytes(keys.encrypt_private_key(key, KEY_PASSPHRASE, log2_n=FAST_KDF))
    cert_path.write_text(row.pem, encoding="utf-8")
    return key_path, cert_path


def test_members_sign_with_the_client_then_the_report_verifies(app, make_room, certify, live, run, tmp_path,
                                                                passphrase_file):
    r = make_room(experts=5, bidders=4)
    complete(r)
    ca_path = tmp_path / "ca.pem"
    from cryptography.hazmat.primitives import serialization
    ca_path.write_bytes(load_ca_certificate().public_bytes(serialization.Encoding.PEM))
    runner = CliRunner()
    for i, person in enumerate(r.experts):
        key_path, cert_path = _material(tmp_path, person, certify, i)
        _row, token = issue_api_token(actor_for(person, "expert"), person, "report signing")
        db.session.commit()
        result = run("report", "sign", "--tender", str(r.tender_id), "--key", str(key_path), "--cert", str(cert_path),
                     "--chain", str(ca_path), "--passphrase-file", str(passphrase_file), "--server", live.url,
                     "--token", token)
        assert result.exit_code == 0, result.output
        if i == 1:  # signing twice is refused by the client with a clear message
            again = run("report", "sign", "--tender", str(r.tender_id), "--key", str(key_path), "--cert",
                        str(cert_path), "--passphrase-file", str(passphrase_file), "--server", live.url,
                        "--token", token)
            assert again.exit_code != 0 and "already signed" in again.output
        if i == 2:  # half signed: the verifier says incomplete
            path = tmp_path / "partial.pdf"
            path.write_bytes(reports.current_pdf(reports.require_report(r.tender_id)))
            partial = runner.invoke(evaluation_cli, ["verify-report", str(path), "--tender", r.tender.code],
                                    obj=None, catch_exceptions=False)
            assert partial.exit_code == 1 and "verdict: incomplete" in partial.output
            assert partial.output.count(" missing") == 2
    db.session.expire_all()
    report = reports.require_report(r.tender_id)
    assert report.status == ReportStatus.SIGNED
    final = tmp_path / "final.pdf"
    final.write_bytes(reports.current_pdf(report))
    cli = app.test_cli_runner()
    ok = cli.invoke(args=["evaluation", "verify-report", str(final), "--tender", r.tender.code])
    assert ok.exit_code == 0 and "verdict: final" in ok.output, ok.output
    ok = cli.invoke(args=["evaluation", "verify-report", str(final), "--ca", str(ca_path)])
    assert ok.exit_code == 0 and "verdict: final" in ok.output, ok.output
    data = bytearray(final.read_bytes())
    data[len(data) // 4] ^= 0x01
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(data))
    bad = cli.invoke(args=["evaluation", "verify-report", str(tampered), "--tender", r.tender.code])
    assert bad.exit_code == 1 and "verdict: invalid" in bad.output
    assert r.experts[0].name in bad.output  # the signer whose signature fails is named


def test_a_member_who_signed_a_replaced_revision_signs_again(app, make_room, certify, live, tmp_path):
    """Two members download the same revision; the second upload is refused by the platform
    (revision_altered) and the client fetches the new revision and signs again."""
    from cryptography import x509

    from ebid.client.http import Api
    from ebid.client.report import API, sign_and_upload
    from tests.evaluation.results_support import sign_as

    r = make_room(experts=5, bidders=4)
    complete(r)
    key, row = certify(person=r.experts[1])
    db.session.commit()
    cert = x509.load_pem_x509_certificate(row.pem.encode())
    _row, token = issue_api_token(actor_for(r.experts[1], "expert"), r.experts[1], "report signing")
    db.session.commit()
    api = Api(live.url, token)
    stale = api.get(API.format(tender_id=r.tender_id))  # member 2 downloads ...
    sign_as(r, 0, certify)  # ... member 1 signs meanwhile

    class FirstStale:
        def __init__(self):
            self.first = True

        def require_token(self):
            api.require_token()

        def get(self, path):
            if self.first:
                self.first = False
                return stale
            return api.get(path)

        def post(self, path, body):
            return api.post(path, body)

    result = sign_and_upload(FirstStale(), r.tender_id, key, cert, [load_ca_certificate()])
    assert result["my_field"] == "Member2"
    db.session.expire_all()
    assert sorted(s.field for s in reports.require_report(r.tender_id).signatures) == ["Member1", "Member2"]
