"""Credentials out of log lines, status messages and events.

A Redis URL may carry its password (``redis://admin:s3cret@redis:6379/0``) and an error
message may quote it (pydantic's ``input_value=...``, a library's exception text). Every
process installs ``install_log_redaction()`` once, so no log record leaves with one, and
messages written elsewhere (CachePolicy status, Kubernetes events) go through ``redact()``.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

MASK = "***"

# scheme://userinfo@ — the userinfo runs to the last "@" before the authority ends, so an
# unencoded "@" in a password does not leave its tail behind.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"<>]*)@")
# ?password=... and friends (redis-py and many HTTP APIs take credentials as query options).
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;][A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|key|auth|sig)"
    r"[A-Za-z0-9_.-]*=)[^&;#\s'\"<>]*",
    re.IGNORECASE,
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    # user:password keeps the user name (it helps to find the right Secret); a lone user
    # part may itself be a token, so it goes too.
    return f"{match['scheme']}{user}:{MASK}@" if colon else f"{match['scheme']}{MASK}@"


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it masked."""
    if "@" in text:
        text = _USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _SECRET_PARAM.sub(lambda m: m["name"] + MASK, text)
    return text


_installed = False


def install_log_redaction() -> None:
    """Redact every log record of this process as it is created: whichever logger or handler
    (kopf posts some records as Kubernetes events) sees it later sees the redacted text."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for the handler to report
            return record
        redacted = redact(message)
        if redacted != message:  # else the template and its args stay for whoever reads them
            record.msg, record.args = redacted, ()
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact(text.rstrip("\n"))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
