"""Daily stock: store movements into ERP inventory adjustments, Sitoo vs ERP drift (no Airflow here).

- :mod:`.movements` — stage non-sale warehouse transactions, post one adjustment per store per day;
- :mod:`.snapshot` — stream both systems' on-hand into PostgreSQL (COPY) and compute drift;
- :mod:`.gate` — the ``stock_drift`` Great Expectations suite, exceptions, history;
- :mod:`.jobs` — the steps over the hooks, as the operators call them.

``drift_summary(conn)`` gives per-location rows of the latest snapshot (see ``SUMMARY_HEADER``).
"""

from include.sitoo_erp.stock.snapshot import SUMMARY_HEADER, drift_summary, drift_trend

__all__ = ["SUMMARY_HEADER", "drift_summary", "drift_trend"]
