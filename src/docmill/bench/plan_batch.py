"""``docmill plan``: the LLM stage online or through the provider's Batch API, for N documents.

Online, the fastest strategy's projection stands (``bench.plan``: the rate limit usually binds).
In batches, requests are outside the rate limit and cost ``factor`` (50 %) of the online price;
the run takes the extraction (the projection without an LLM stage: CPU, memory) plus the
provider's turnaround, up to its completion window (24 h) after the last batch is submitted. A
provider caps the tokens enqueued in batches at once (``queue_tokens``, per account tier): more
than that goes in waves, each taking up to the turnaround. Batch files hold ``max_requests`` lines.
"""

from __future__ import annotations

import dataclasses
import math

from docmill.bench.plan import PlanInputs, Profile, cost_per_doc, format_duration, project, tokens_per_doc
from docmill.llm.pricing import BATCH_PRICE_FACTOR

TURNAROUND_S = 24 * 3600.0  # OpenAI's completion window, and Anthropic's: the most a batch takes
MAX_REQUESTS = 50_000  # lines per batch file (OpenAI); Anthropic allows 100,000


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    """Online against batch for ``docs`` documents: wall time and cost of each."""

    docs: int
    online_s: float
    online_cost: float
    batch_s: float
    batch_cost: float
    batches: int
    waves: int
    online_binding: str


def compare(
    profile: Profile,
    inputs: PlanInputs,
    *,
    factor: float = BATCH_PRICE_FACTOR,
    turnaround_s: float = TURNAROUND_S,
    max_requests: int = MAX_REQUESTS,
    queue_tokens: float | None = None,
) -> Comparison | None:
    """The comparison, or None when the run has no LLM stage."""
    if not inputs.llm or not profile.scaling:
        return None
    online = min((project(profile, s, inputs) for s in profile.scaling.values()), key=lambda p: p.wall_s)
    offline = dataclasses.replace(inputs, llm=False, budget=None)
    extraction = min(project(profile, s, offline).wall_s for s in profile.scaling.values())
    tokens_in, _ = tokens_per_doc(profile, inputs)
    waves = 1 if queue_tokens is None else max(1, math.ceil(inputs.docs * tokens_in / queue_tokens))
    per_doc = cost_per_doc(profile, inputs)
    return Comparison(
        docs=inputs.docs,
        online_s=online.wall_s,
        online_cost=inputs.docs * per_doc,
        batch_s=extraction + waves * turnaround_s,
        batch_cost=inputs.docs * per_doc * factor,
        batches=math.ceil(inputs.docs / max_requests),
        waves=waves,
        online_binding=online.binding,
    )


def comparison_lines(found: Comparison | None) -> list[str]:
    """The table ``docmill plan`` prints under its report."""
    if found is None:
        return []
    saved = found.online_cost - found.batch_cost
    waves = f", {found.waves} waves (queue limit)" if found.waves > 1 else ""
    faster = "online" if found.online_s < found.batch_s else "batch"
    return [
        "",
        f"Online vs batch (--batch) for {found.docs:,} documents:",
        "| mode | wall time | cost | bound by |",
        "|---|---|---|---|",
        f"| online | {format_duration(found.online_s)} | ${found.online_cost:,.2f} | "
        f"{found.online_binding} |",
        f"| batch | at most {format_duration(found.batch_s)} | ${found.batch_cost:,.2f} | "
        f"the provider's turnaround ({found.batches:,} batch files{waves}) |",
        f"Batch saves ${saved:,.2f}; {faster} finishes first.",
    ]
