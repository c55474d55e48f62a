"""NetSuite REST + SuiteQL emulator (reference erp-api.md §11) on 127.0.0.1.

Python API::

    ns = NetSuiteSandbox(master=catalogue.erp_master_data(), account_id="1234567_SB1",
                         client_id="sandbox-client-id", certificate_id="sandbox-cert-id",
                         on_hand=None | callable(item_id, location_id) -> int | None | {(item, loc): qty},
                         faults=NetSuiteFaults(...), token_lifetime_s=3600, public_key=None)
    with ns:  # or ns.start(port=0) ... ns.stop()
        ns.url, ns.token_url
        ns.set_faults(latency_ms=150, concurrency_limit=3, ...); ns.fail_next(2); ns.timeout_next_upserts(1)
        ns.counters(); ns.reset_counters(); ns.reset(); ns.expire_tokens(); ns.set_token_lifetime(s)
        ns.documents(type=None); ns.count_documents_by_external_id(); ns.on_hand(item_id, location_id)
        ns.ledger(externalid_like="%")  # {account: {name, type, debit, credit, balance}} from the GL
        ns.issue_token()  # bearer token without the JWT flow
        ns.store.query(sql)  # direct SQLite read

HTTP control (no auth): GET /_sandbox/counters, GET|POST /_sandbox/faults, GET /_sandbox/documents[?type=],
GET /_sandbox/documents/by-external-id, GET /_sandbox/on-hand?item=&location=,
GET /_sandbox/ledger[?externalid_like=], POST /_sandbox/reset,
POST /_sandbox/reset-counters, POST /_sandbox/expire-tokens.
"""

from include.sandbox.netsuite.app import NetSuiteFaults, NetSuiteSandbox
from include.sandbox.netsuite.errors import NetSuiteError
from include.sandbox.netsuite.store import DISCOUNT_TAX_REFERENCE, default_on_hand

__all__ = ["DISCOUNT_TAX_REFERENCE", "NetSuiteError", "NetSuiteFaults", "NetSuiteSandbox", "default_on_hand"]
