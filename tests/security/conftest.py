"""The end-to-end fixtures (DagBag, sales DAG) are shared with tests/e2e."""

from tests.e2e.conftest import dagbag, sales_dag  # noqa: F401
