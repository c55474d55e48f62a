"""Sitoo REST API v2 emulator: ``SitooSandbox`` over a seeded ``SitooDataset``."""

from include.sandbox.sitoo.state import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_ID,
    DEFAULT_PASSWORD,
    MAX_NUM,
    SitooFaults,
    SitooSandbox,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_API_ID",
    "DEFAULT_PASSWORD",
    "MAX_NUM",
    "SitooFaults",
    "SitooSandbox",
]
