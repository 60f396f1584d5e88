"""Messages kept untranslated and translated when read (国际化).

A message stored for later (a hall announcement, say) keeps its English msgid and its parameters, and each
reader sees it in their own language. :func:`N_` marks such a msgid for extraction (``scripts/i18n.sh``
passes ``-k N_``) and returns it unchanged.
"""

from __future__ import annotations


def N_(msgid: str) -> str:  # noqa: N802 - the conventional name of gettext_noop
    """Mark ``msgid`` for the catalogue; translate it with ``gettext`` when it is shown."""
    return msgid
