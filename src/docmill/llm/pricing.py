"""Prices and cost: USD per million input and output tokens; batch prices a share of them.

Providers' Batch APIs (OpenAI's, Anthropic's Message Batches) charge 50 % of the online price;
``BATCH_PRICE_FACTOR`` is that share, ``llm.batch_price_factor`` changes it.

``BUILT_IN`` holds the list prices of common OpenAI and Anthropic models, used when the run
configures neither ``price_input_per_1m`` nor ``price_output_per_1m``; a model it does not know (a
local one, an emulated one) is free unless priced. A dated snapshot takes its family's price
(``claude-3-5-haiku-20241022`` → ``claude-3-5-haiku``). Prices change: configure yours to be sure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from docmill.errors import ConfigError

BATCH_PRICE_FACTOR = 0.5  # batch prices as a share of the online ones
_DATE = re.compile(r"\d{8}|\d{4}-\d{2}-\d{2}")  # a snapshot's date suffix


@dataclass(frozen=True, slots=True)
class Price:
    """What one model costs, per million tokens in and out (0 = free, e.g. a local Ollama)."""

    input_per_1m: float = 0.0
    output_per_1m: float = 0.0

    def __post_init__(self) -> None:
        if self.input_per_1m < 0 or self.output_per_1m < 0:
            raise ConfigError(f"prices must be >= 0, got {self.input_per_1m} and {self.output_per_1m}")

    def scaled(self, factor: float = BATCH_PRICE_FACTOR) -> Price:
        """This price times ``factor`` (the batch price: ``factor`` 0.5)."""
        return Price(self.input_per_1m * factor, self.output_per_1m * factor)

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """USD for one call."""
        return (tokens_in * self.input_per_1m + tokens_out * self.output_per_1m) / 1_000_000


# USD per million tokens (input, output), the providers' list prices for their standard tier.
BUILT_IN: dict[str, Price] = {
    # OpenAI
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
    # Anthropic
    "claude-opus-4-5": Price(5.00, 25.00),
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-opus-4": Price(15.00, 75.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-haiku": Price(0.25, 1.25),
}


def built_in(model: str) -> Price | None:
    """The built-in price of ``model``: its own, else that of the longest family name it extends by a
    date or ``-latest`` (``claude-3-5-haiku-20241022``, ``claude-sonnet-4-20250514``); None if unknown."""
    if model in BUILT_IN:
        return BUILT_IN[model]
    for name in sorted(BUILT_IN, key=len, reverse=True):
        rest = model[len(name) + 1 :] if model.startswith(f"{name}-") else ""
        if rest == "latest" or _DATE.fullmatch(rest):  # 20241022, 2024-07-18
            return BUILT_IN[name]
    return None


def price_of(input_per_1m: float | None, output_per_1m: float | None, model: str | None) -> Price:
    """The price a run pays: the configured one (an unset half is 0), or, with neither configured,
    the model's built-in price, else free."""
    if input_per_1m is None and output_per_1m is None:
        return (built_in(model) if model else None) or Price()
    return Price(input_per_1m or 0.0, output_per_1m or 0.0)
