"""WSGI entry point for gunicorn: ``gunicorn -k gthread 'ebid.wsgi:app'``."""

import gc

from ebid.app import create_app

app = create_app()
# What start-up made (modules, the app, its routes, about 270,000 objects) lives as long as the process:
# out of the collector's sight, a full collection scans only what requests made since (measured in the
# deadline-surge workers: a full collection paused every thread for 144-207 ms before, 14-32 ms after).
gc.freeze()
