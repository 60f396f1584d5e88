"""The reference issuer (模拟出函机构): a stand-alone bank guarantee system speaking the issuer protocol.

It lets the platform be developed, demonstrated and tested against a real HTTP counterpart: it
verifies signed platform messages, underwrites orders, issues PAdES-sealed letters, answers releases,
claims and reveal notices with signed callbacks, and publishes a signed letter registry. It has its own
keys, its own SQLite store and its own Flask app, and never imports the platform shell (``ebid``).
"""

from guarantees.issuer_sim.app import Simulator, create_app
from guarantees.issuer_sim.config import SimConfig

__all__ = ["SimConfig", "Simulator", "create_app"]
