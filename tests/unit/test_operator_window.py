"""The extract window the staging operator reads from its rendered template fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include.sitoo_erp.operators.staging import as_datetime


def test_iso_text_and_datetimes_become_aware_datetimes():
    assert as_datetime("2026-11-16T09:00:00+00:00", "window_start") == datetime(2026, 11, 16, 9, tzinfo=UTC)
    moment = datetime(2026, 11, 16, 10, tzinfo=UTC)
    assert as_datetime(moment, "window_end") == moment


@pytest.mark.parametrize("value", ["P1D", "", None, 1763283600])
def test_a_value_that_is_no_moment_is_refused_naming_the_field(value):
    # "P1D" parses as a duration: it used to come back as one and fail later, far from the field.
    with pytest.raises(ValueError, match="window_start must be a datetime or ISO-8601 string"):
        as_datetime(value, "window_start")
