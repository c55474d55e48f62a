"""Task logs carry each task's own summary, not a library's chatter.

Great Expectations logs hundreds of INFO lines per validation (expectation defaults, metric resolution,
"created temporary directory … for ephemeral docs site"), and it sets some of its own loggers to INFO
explicitly (``great_expectations.data_context.types.base``), which a level on the parent logger does
not override. Alembic logs its migration context on every ``migrate_staging``. :func:`quiet_libraries`
raises these loggers, and every child logger a library gave its own lower level, to WARNING: their
warnings and errors still reach the task log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

NOISY_LIBRARIES = ("great_expectations", "alembic")


def quiet_libraries(names: Iterable[str] = NOISY_LIBRARIES, level: int = logging.WARNING) -> None:
    """Call after importing the library (its own ``setLevel`` calls run at import time)."""
    for name in names:
        logging.getLogger(name).setLevel(level)
        prefix = f"{name}."
        for other, logger in list(logging.root.manager.loggerDict.items()):
            if (
                other.startswith(prefix)
                and isinstance(logger, logging.Logger)
                and logger.level != logging.NOTSET
                and logger.level < level
            ):
                logger.setLevel(level)
