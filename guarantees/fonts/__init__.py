"""Fonts shipped with the project (licence and provenance: README.md in this folder)."""

from pathlib import Path

CJK_FONT_PATH = Path(__file__).with_name("wqy-zenhei-gb2312.ttf")
CJK_FONT_NAME = "WQYZenHeiGB2312"  # the name reportlab registers it under

__all__ = ["CJK_FONT_NAME", "CJK_FONT_PATH"]
