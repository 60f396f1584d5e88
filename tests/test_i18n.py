"""The Chinese catalogue covers every UI string, keeps every placeholder, and the pages use it.

The extraction below runs the same mapping (``babel.cfg``) and keywords (``-k`` in ``scripts/i18n.sh``)
as the script, in-process, so a string added anywhere without a translation fails here with its msgid.
Run ``bash scripts/i18n.sh`` and translate the new entries of ``translations/zh_CN/LC_MESSAGES/messages.po``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from ebid.app_paths import ROOT, TRANSLATIONS_DIR

PO = TRANSLATIONS_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
SCRIPT = ROOT / "scripts" / "i18n.sh"
# A printf conversion: %(name)s, %(num)d, %s, %% ...
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*\d*(?:\.\d+)?[diouxXeEfFgGcrs%]")


def _keywords() -> dict:
    """Babel's default keywords plus the script's ``-k`` ones (``_l``, ``lazy_gettext``)."""
    extra = re.findall(r"-k\s+(\w+)", SCRIPT.read_text(encoding="utf-8"))
    assert {"_l", "lazy_gettext"} <= set(extra), "scripts/i18n.sh must extract _l and lazy_gettext"
    return {**DEFAULT_KEYWORDS, **dict.fromkeys(extra)}


def _extracted() -> dict[str, tuple[str | None, set[str]]]:
    """msgid -> (msgid_plural or None, the files it occurs in), as ``pybabel extract`` would find them."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, "babel.cfg")
    found: dict[str, tuple[str | None, set[str]]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=_keywords()):
        singular, plural = (message[0], message[1]) if isinstance(message, tuple) else (message, None)
        if not singular:
            continue
        found.setdefault(singular, (plural, set()))[1].add(f"{filename}:{lineno}")
    return found


def _catalogue():
    with open(PO, "rb") as f:
        return read_po(f, locale="zh_CN")


def _strings(message) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(msgids, msgstrs) of a catalogue entry, singular or plural."""
    ids = tuple(message.id) if isinstance(message.id, list | tuple) else (message.id,)
    strs = tuple(message.string) if isinstance(message.string, list | tuple) else (message.string,)
    return ids, strs


@pytest.fixture(scope="session")
def compiled_catalogue() -> Path:
    """The compiled zh_CN catalogue the app loads; (re)written from the .po when missing or older."""
    if not MO.exists() or MO.stat().st_mtime < PO.stat().st_mtime:
        catalogue = _catalogue()
        with open(MO, "wb") as f:
            write_mo(f, catalogue)
    return MO


def test_scripts_extract_the_lazy_keywords():
    extracted = _extracted()
    # core/identity/tokens.py marks its messages with _l only
    assert "The expiry time must be in the future." in extracted


def test_zh_cn_catalogue_translates_every_extractable_msgid():
    catalogue = _catalogue()
    missing, untranslated, plural_changed = [], [], []
    for msgid, (plural, places) in sorted(_extracted().items()):
        where = sorted(places)[0]
        entry = catalogue.get(msgid)
        if entry is None:
            missing.append(f"{msgid!r} ({where})")
            continue
        ids, strs = _strings(entry)
        if plural is not None and (len(ids) < 2 or ids[1] != plural):
            plural_changed.append(f"{msgid!r} ({where})")
        if not all(s.strip() for s in strs):
            untranslated.append(f"{msgid!r} ({where})")
    problems = []
    if missing:
        problems.append(f"{len(missing)} msgid(s) not in translations/zh_CN/LC_MESSAGES/messages.po — run scripts/i18n.sh "
                        "and translate them:\n  " + "\n  ".join(missing))
    if untranslated:
        problems.append(f"{len(untranslated)} msgid(s) without a translation:\n  " + "\n  ".join(untranslated))
    if plural_changed:
        problems.append("plural msgid changed, run scripts/i18n.sh:\n  " + "\n  ".join(plural_changed))
    assert not problems, "\n".join(problems)


def test_zh_cn_catalogue_has_no_fuzzy_entries_and_one_plural_form():
    catalogue = _catalogue()
    assert catalogue.num_plurals == 1 and catalogue.plural_expr == "0"
    fuzzy = [repr(m.id) for m in catalogue if m.id and m.fuzzy]
    assert not fuzzy, "fuzzy entries — check the translation, then remove the flag:\n  " + "\n  ".join(fuzzy)
    for message in catalogue:
        if message.id and isinstance(message.id, list | tuple):
            assert len(message.string) == 1, f"{message.id!r} needs exactly one plural form (msgstr[0])"


def test_every_translation_keeps_the_placeholders_of_its_msgid():
    wrong = []
    for message in _catalogue():
        if not message.id:
            continue
        ids, strs = _strings(message)
        want = sorted(PLACEHOLDER.findall(ids[-1]))  # the plural form for msgstr[0] of a plural entry
        for text in strs:
            if text and sorted(PLACEHOLDER.findall(text)) != want:
                wrong.append(f"{ids[0]!r}: {text!r} has {sorted(PLACEHOLDER.findall(text))}, wants {want}")
    assert not wrong, "placeholders changed:\n  " + "\n  ".join(wrong)


def test_home_page_is_chinese_by_default_and_english_on_request(client, compiled_catalogue):
    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")  # no language preference: the default applies
    chinese = client.get("/").get_data(as_text=True)
    assert "ebid 公共资源交易平台" in chinese
    assert "ebid Public Resource Trading" not in chinese
    assert '<html lang="zh-CN">' in chinese

    english = client.get("/?lang=en").get_data(as_text=True)
    assert "ebid Public Resource Trading" in english
    assert "公共资源交易平台" not in english
    assert '<html lang="en">' in english
