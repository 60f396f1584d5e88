#!/usr/bin/env bash
# Lint, check the layering, then run the whole suite on SQLite and again on PostgreSQL + Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# poppler-utils (pdfsig, pdffonts, pdftotext) and libnss3-tools (certutil, for pdfsig's trust store) check the
# signed e-guarantee letters independently of pyHanko
if ! { command -v pdfsig && command -v certutil; } >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing poppler-utils and libnss3-tools for the signed-PDF tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils libnss3-tools >/dev/null
fi
if ! fc-list 2>/dev/null | grep -qi "wenquanyi\|noto.*cjk" && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing a CJK font (WenQuanYi Zen Hei) for the rendered-page tests"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null; } || true
fi

echo "== ruff"
ruff check .
echo "== import-linter"
lint-imports

# Two workers (pytest-xdist): each has its own SQLite files, PostgreSQL database and Redis db
# (tests/conftest.py). EBID_TEST_WORKERS=0 runs in one process.
WORKERS=${EBID_TEST_WORKERS:-2}
XDIST=()
if [ "$WORKERS" != 0 ]; then XDIST=(-n "$WORKERS"); fi

echo "== tests on SQLite"
env -u EBID_TEST_DATABASE_URL -u EBID_TEST_REDIS_URL python -m pytest "${XDIST[@]}" "$@"

echo "== tests on PostgreSQL + Redis"
bash scripts/services.sh
export EBID_TEST_DATABASE_URL=${EBID_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}
export EBID_TEST_REDIS_URL=${EBID_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
python -m pytest "${XDIST[@]}" "$@"
