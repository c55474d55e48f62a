"""Monthly reconciliation: Sitoo vs ERP vs Z-reports per store x business day x tax code (no Airflow).

``period`` (which days), ``sweep`` (the period again from Sitoo, Z-reports too), ``erp`` (SuiteQL
totals and drill-downs pushed to the ERP), ``compare`` (compare and classify every difference),
``gate`` (the Great Expectations suite over the result), ``summary`` (one screen of text).
"""
