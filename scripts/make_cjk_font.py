#!/usr/bin/env python3
"""Make the CJK TrueType font shipped in ``core/fonts/`` (reproducible).

Takes face 0 (WenQuanYi Zen Hei, 文泉驿正黑) out of Debian's ``fonts-wqy-zenhei`` collection and keeps
only the characters letters and reports need: GB2312 (all 6,763 hanzi plus its symbols, punctuation,
Greek, Cyrillic, kana and box drawing), printable ASCII, CJK Symbols and Punctuation (U+3000-303F) and
Halfwidth and Fullwidth Forms (U+FF00-FFEF). Hinting, embedded bitmaps, vertical metrics and layout tables
are dropped to keep the file small. The result is a single-font .ttf (not a .ttc), which both reportlab's
``TTFont`` and pyHanko's stamp fonts accept.

    .venv/bin/python scripts/make_cjk_font.py [--source /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
DEFAULT_OUTPUT = ROOT / "core" / "fonts" / "wqy-zenhei-gb2312.ttf"
FAMILY = "WQY ZenHei GB2312"  # a new name: the subset is a modified font and must not pose as the original


def gb2312_codepoints() -> set[int]:
    """Every character of GB/T 2312-1980 (rows 0xA1-0xF7, cells 0xA1-0xFE of EUC-CN)."""
    points: set[int] = set()
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                char = bytes((high, low)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            points.add(ord(char))
    return points


def wanted_codepoints() -> set[int]:
    points = gb2312_codepoints()
    points.update(range(0x20, 0x7F))        # printable ASCII
    points.update(range(0x3000, 0x3040))    # CJK symbols and punctuation
    points.update(range(0xFF00, 0xFFF0))    # halfwidth and fullwidth forms
    points.update((0xA0, 0xA5, 0xB7, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026, 0x2030))
    return points


def make_font(source: Path, output: Path) -> dict:
    font = TTCollection(str(source)).fonts[0]
    font.recalcTimestamp = False            # same input, same bytes
    for tag in ("BDF ", "EBDT", "EBLC", "EBSC", "FFTM"):
        if tag in font:
            del font[tag]
    available = set(font.getBestCmap())
    points = wanted_codepoints() & available
    options = subset.Options()
    options.layout_features = []            # no GSUB/GPOS features: letters are set horizontally, no shaping
    options.hinting = False
    options.drop_tables += ["vhea", "vmtx", "gasp", "GSUB", "GPOS", "GDEF"]
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.recalc_bounds = True
    options.glyph_names = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(points))
    subsetter.subset(font)
    _rename(font)
    output.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(output))
    return {"characters": len(points), "missing": len(wanted_codepoints() - available),
            "glyphs": len(font.getGlyphOrder()), "bytes": output.stat().st_size}


def _rename(font) -> None:
    """Give the subset its own family name (keeps copyright and licence records untouched)."""
    postscript = FAMILY.replace(" ", "")
    names = font["name"]
    for record in names.names:
        if record.nameID == 1:
            record.string = FAMILY
        elif record.nameID == 3:
            record.string = f"{postscript}-Regular; subset of WenQuanYi Zen Hei 0.9.45"
        elif record.nameID == 4:
            record.string = f"{FAMILY} Regular"
        elif record.nameID == 6:
            record.string = f"{postscript}-Regular"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"{args.source} not found: install Debian's fonts-wqy-zenhei (apt-get install fonts-wqy-zenhei)",
              file=sys.stderr)
        return 1
    info = make_font(args.source, args.output)
    print(f"wrote {args.output}: {info['characters']} characters ({info['missing']} wanted but not in the "
          f"source font), {info['glyphs']} glyphs, {info['bytes']:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
