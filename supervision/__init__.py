"""Supervision (行政监督): the live console, audit views, collusion screens, suspension, complaints, statistics.

Sits between ``evaluation`` and the ``ebid`` shell: it reads every domain and changes nothing but what a
supervisor may change (a tender's suspension, complaint decisions).
"""

from __future__ import annotations
