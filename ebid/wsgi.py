"""WSGI entry point for gunicorn: ``gunicorn -k gthread 'ebid.wsgi:app'``."""

from ebid.app import create_app

app = create_app()
