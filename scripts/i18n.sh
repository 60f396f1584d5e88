#!/usr/bin/env bash
# Extract the UI strings to translations/messages.pot, update (or create) the zh_CN catalogue, compile.
# Run after adding or changing any _() / gettext / ngettext / lazy_gettext / _l string, then translate
# the new (empty or fuzzy) entries in translations/zh_CN/LC_MESSAGES/messages.po and run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
POT=translations/messages.pot
PO=translations/zh_CN/LC_MESSAGES/messages.po
mkdir -p translations

"$PYBABEL" extract -F babel.cfg -o "$POT" --sort-by-file \
  -k _l -k lazy_gettext \
  --project=ebid --copyright-holder="ebid contributors" --msgid-bugs-address="" \
  --add-comments=TRANSLATORS: \
  .

if [ -f "$PO" ]; then
  "$PYBABEL" update -i "$POT" -d translations -l zh_CN --ignore-obsolete
else
  "$PYBABEL" init -i "$POT" -d translations -l zh_CN
fi

"$PYBABEL" compile -d translations -l zh_CN --statistics
