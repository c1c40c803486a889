"""Keep query strings out of the log lines that httpx and httpcore write.

httpx logs every request URL at INFO ("HTTP Request: GET https://...") and httpcore logs
response headers at DEBUG. Signed download URLs carry their signature in the query string, and
a redirect's ``Location`` header can carry one too, so a filter on those loggers replaces every
query string in their messages with ``?<redacted>`` before any handler receives it.
"""

from __future__ import annotations

import logging
import re

_URL_QUERY = re.compile(r"(https?://[^\s'\"<>?#]*)\?[^\s'\"<>#]*")
# httpcore logs from child loggers; a filter on a parent logger does not see their records.
_LOGGER_NAMES = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def redact_query_strings(text: str) -> str:
    """Return ``text`` with the query string of every http(s) URL replaced by ``<redacted>``."""
    return _URL_QUERY.sub(r"\1?<redacted>", text)


class QueryStringRedactingFilter(logging.Filter):
    """Rewrite a record's message with query strings redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        redacted = redact_query_strings(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER = QueryStringRedactingFilter()


def install_query_string_redaction() -> None:
    """Attach the filter to the httpx and httpcore loggers once per process."""
    for name in _LOGGER_NAMES:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
