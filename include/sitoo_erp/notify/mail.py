"""The one way an alert or report leaves the package: the smtp provider's ``SmtpHook``.

Every mail (gate alert, drift report, exception-rate jump, digest, reconciliation report) goes
through ``send_mail`` so the Airflow SMTP connection, the subject rule and attachments behave the
same everywhere. The provider is imported only when a mail is sent, so the renderers import without
Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def one_line_subject(subject: str, limit: int = 250) -> str:
    """A subject is one header line: CR, LF and other control characters from POS data become a space
    (a CR/LF would otherwise start a new header, or make the SMTP hook refuse the message)."""
    return _LINE_BREAKS.sub(" ", subject)[:limit]


def send_mail(
    smtp_conn_id: str,
    to: Sequence[str],
    subject: str,
    html: str,
    *,
    from_email: str | None = None,
    files: Sequence[str] | None = None,
) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(
            to=list(to),
            subject=one_line_subject(subject),
            html_content=html,
            from_email=from_email,
            files=list(files) if files else None,
        )
