#!/usr/bin/env bash
# Migrate the database, run the demo lifecycle, then serve the site on http://127.0.0.1:5000/.
set -euo pipefail
cd "$(dirname "$0")/.."
export EBID_DATA_DIR=${EBID_DATA_DIR:-$PWD/instance}
.venv/bin/ebid db upgrade
exec .venv/bin/ebid demo "$@"
