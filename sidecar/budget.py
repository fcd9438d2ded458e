"""``spec.budget.onExhausted: cacheOnly``: once the operator reports the period's budget
spent (over the policy long poll), hits are still served and anything that would call the
upstream gets a 429 in the provider's own error shape, so SDKs raise their rate-limit
error with our message. The spend is summed from the sidecars' statistics reports, so the
stop comes up to one stats interval (plus a long-poll round trip) after the budget runs out.
"""

from __future__ import annotations

import datetime

from aiohttp import web

from .runtime import Runtime
from .upstream import api_error

KIND = {"anthropic": "rate_limit_error", "openai": "insufficient_quota"}


def refusal(rt: Runtime, family: str) -> web.Response | None:
    """The 429 for a request that would reach the upstream, or ``None`` to let it go."""
    budget = rt.policy.budget
    if budget is None or budget.on_exhausted != "cacheOnly" or not rt.budget_exhausted:
        return None
    message = (
        f"the CachePolicy's budget of {budget.amount_usd:g} USD per {budget.period} (UTC) is "
        "spent and spec.budget.onExhausted is cacheOnly: cached answers are served, new "
        "requests are refused until the next period"
    )
    resp = api_error(family, 429, KIND.get(family, "rate_limit_error"), message)
    resp.headers["retry-after"] = str(seconds_to_next_period(budget.period))
    return resp


def seconds_to_next_period(period: str, now: datetime.datetime | None = None) -> int:
    at = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        end = start + datetime.timedelta(days=1)
    else:
        first = start.replace(day=1)
        end = (first + datetime.timedelta(days=32)).replace(day=1)
    return max(1, int((end - at).total_seconds()))
