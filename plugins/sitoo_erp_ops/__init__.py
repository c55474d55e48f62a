"""Sitoo → ERP operations page: an Airflow 3 plugin (FastAPI app + a nav entry in the Airflow UI).

Airflow imports every ``.py`` file under ``plugins/`` as a top-level module by its file stem;
``.airflowignore`` here limits that to ``sitoo_erp_ops_plugin.py``, which imports the rest as
the package ``sitoo_erp_ops`` (``plugins/`` is on ``sys.path``).
"""
