"""E-guarantee pages (HTML), blueprint ``guarantees``.

* bidders: a lot's bid guarantee (``/tenders/<id>/lots/<lot>/guarantee``) and ``/my/guarantees``
  (:mod:`guarantees.views_bidder`);
* the tender's staff: ``/tenders/<id>/guarantees``, claims (:mod:`guarantees.views_tender`);
* the public: ``/guarantees/verify`` (:mod:`guarantees.views_verify`) and ``/guarantees/figures`` with its
  CSV (:mod:`guarantees.views_figures`);
* platform administrators: issuers, products, rates and the rate cap under ``/guarantees/admin``
  (:mod:`guarantees.views_admin`).

The JSON API is :mod:`guarantees.api`.
"""

from __future__ import annotations

from flask import Flask

from guarantees import (  # noqa: F401  (routes join bp)
    views_admin,
    views_bidder,
    views_figures,
    views_tender,
    views_verify,
)
from guarantees.views_support import bp


def register(app: Flask) -> None:
    """Attach the guarantee pages to ``app``."""
    app.register_blueprint(bp)


__all__ = ["bp", "register"]
