"""Fonts shipped with the project (licence and provenance: README.md in this folder); used by core.pdf."""
