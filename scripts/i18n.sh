#!/usr/bin/env bash
# Extract the UI strings to translations/messages.pot, update (or create) the zh_CN catalogue, compile.
# Run after adding or changing any _() / gettext / ngettext / lazy_gettext / _l string, then translate
# the new (empty or fuzzy) entries of translations/zh_CN/LC_MESSAGES/messages.po and run it again;
# tests/test_i18n.py lists any msgid still missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
PYTHON=${PYTHON:-.venv/bin/python}
POT=translations/messages.pot
PO=translations/zh_CN/LC_MESSAGES/messages.po
VERSION=$("$PYTHON" -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
mkdir -p translations

# babel.cfg's patterns are relative to the directory given last (the repository root); keywords beyond
# Babel's defaults (_ gettext ngettext ...) are the lazy ones. Locations are kept, sorted by file.
"$PYBABEL" extract -F babel.cfg -o "$POT" --sort-by-file \
  -k _l -k lazy_gettext -k N_ \
  --project=ebid --version="$VERSION" --copyright-holder="ebid contributors" \
  --add-comments=TRANSLATORS: \
  .

if [ -f "$PO" ]; then
  "$PYBABEL" update -i "$POT" -d translations -l zh_CN --ignore-obsolete
else
  "$PYBABEL" init -i "$POT" -d translations -l zh_CN
fi

# Babel parses the app's "zh_CN" as zh_Hans_CN and gettext looks for that folder (or "zh"), never for
# zh_CN: the committed symlink translations/zh_Hans_CN -> zh_CN lets the app find the catalogue.
[ -e translations/zh_Hans_CN ] || ln -s zh_CN translations/zh_Hans_CN

"$PYBABEL" compile -d translations -l zh_CN --statistics
