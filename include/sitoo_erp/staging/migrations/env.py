"""Alembic environment: runs on the connection handed over by ``staging.schema.migrate``."""

from alembic import context

from include.sitoo_erp.staging.schema import SCHEMA

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    version_table="alembic_version",
    version_table_schema=SCHEMA,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
