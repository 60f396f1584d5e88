"""The shell: app factory, CLI, Celery worker and beat entry points."""

from ebid.app import create_app

__all__ = ["create_app"]
