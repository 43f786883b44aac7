"""Prices and cost: USD per million input and output tokens; batch prices a share of them.

Providers' Batch APIs (OpenAI's, Anthropic's Message Batches) charge 50 % of the online price;
``BATCH_PRICE_FACTOR`` is that share, ``llm.batch_price_factor`` changes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from docmill.errors import ConfigError

BATCH_PRICE_FACTOR = 0.5  # batch prices as a share of the online ones


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
