"""The public verification page and API share one rate limit per address, answered with a clear 429."""

from __future__ import annotations

import io

import pytest

from core.extensions import limiter
from guarantees.limits import CONFIG_KEY


@pytest.fixture
def limited(app):
    """Limits on (they are off in the test app), three verifications a minute, empty counters."""
    app.config.update(RATELIMIT_ENABLED=True, **{CONFIG_KEY: "3 per minute"})
    limiter.reset()
    yield app
    limiter.reset()
    app.config.update(RATELIMIT_ENABLED=False)
    app.config.pop(CONFIG_KEY)


def test_page_and_api_share_the_budget(client, limited):
    assert client.get("/guarantees/verify?no=GN-1&code=ABCDEFGH23").status_code == 200
    assert client.get("/api/guarantees/verify?no=GN-1&code=ABCDEFGH23").status_code == 200
    upload = client.post("/guarantees/verify", data={"file": (io.BytesIO(b"%PDF-1.4 not signed"), "x.pdf")},
                         content_type="multipart/form-data")
    assert upload.status_code == 200
    page = client.get("/guarantees/verify?no=GN-1&code=ABCDEFGH23", headers={"Accept": "text/html"})
    assert page.status_code == 429
    text = page.get_data(as_text=True)
    assert "Too many letter verifications from your address" in text and "seconds" in text
    api = client.get("/api/guarantees/verify?no=GN-1&code=ABCDEFGH23")
    body = api.get_json()
    assert api.status_code == 429 and body["code"] == "too_many_verifications"
    wait = int(body["message"].split("wait ")[1].split(" ")[0])
    assert 1 <= wait <= 60
    assert api.headers.get("Retry-After") is not None or api.headers.get("X-RateLimit-Reset") is not None


def test_empty_form_is_free(client, limited):
    for _ in range(5):
        assert client.get("/guarantees/verify").status_code == 200
    assert client.get("/guarantees/verify?no=GN-1&code=ABCDEFGH23").status_code == 200


def test_api_upload_counts(client, limited):
    for expected in (200, 200, 200, 429):
        response = client.post("/api/guarantees/verify", data={"file": (io.BytesIO(b"%PDF-1.4"), "x.pdf")},
                               content_type="multipart/form-data")
        assert response.status_code == expected
    assert response.get_json()["code"] == "too_many_verifications"


def test_off_when_limits_are_off(client, app):
    app.config[CONFIG_KEY] = "1 per minute"
    try:
        for _ in range(3):
            assert client.get("/api/guarantees/verify?no=GN-1&code=ABCDEFGH23").status_code == 200
    finally:
        app.config.pop(CONFIG_KEY)
