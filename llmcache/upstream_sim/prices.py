"""The simulator bills with the project's one price table (``llmcache.prices``)."""

from llmcache.prices import PRICES, price_for

__all__ = ["PRICES", "price_for"]
