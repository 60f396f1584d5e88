"""The kernel every domain stands on: config, db, clock, identity, audit, realtime, storage."""
