"""Reusable Airflow operators over the Sitoo and ERP hooks (the DAG files only wire them)."""
