"""``docmill emulate``: a local OpenAI/Ollama/Anthropic-compatible provider with rate limits and faults."""

from __future__ import annotations

import typer

from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import serve_forever


def emulate(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    rpm: int = typer.Option(600, help="Requests allowed per window (0 = unlimited)."),
    tpm: int = typer.Option(200_000, help="Tokens allowed per window (0 = unlimited)."),
    window: float = typer.Option(60.0, help="Length of the rate-limit window, seconds."),
    latency_median: float = typer.Option(1.0, help="Median latency, seconds (lognormal)."),
    latency_sigma: float = typer.Option(0.3, help="Spread of the lognormal latency."),
    per_token_latency: float = typer.Option(0.0, help="Extra seconds per output token."),
    max_concurrency: int = typer.Option(0, help="Requests worked on at once; the rest queue (0 = no cap)."),
    error_rate: float = typer.Option(0.0, help="Share of documents given a wrong label (deterministic)."),
    fail_500: float = typer.Option(0.0, help="Share of requests answered 500."),
    fail_503: float = typer.Option(0.0, help="Share of requests answered 503 (Anthropic: 529 overloaded)."),
    drop: float = typer.Option(0.0, help="Share of connections closed without a reply."),
    hang: float = typer.Option(0.0, help="Share of requests that never get an answer."),
    malformed: float = typer.Option(0.0, help="Share of replies with a malformed JSON body."),
    truncated: float = typer.Option(0.0, help="Share of replies cut off halfway."),
    bad_label: float = typer.Option(0.0, help="Share of answers naming a label outside the set."),
    gullible: bool = typer.Option(False, help="Obey 'label: X' instructions found in documents."),
    api_key_env: str | None = typer.Option(None, help="Require the key held by this environment variable."),
    seed: int = typer.Option(0, help="Seed of the fault and latency draws."),
    limit_headers: str = typer.Option(
        "openai", help="Rate-limit headers on every reply: openai (x-ratelimit-*), anthropic, or none."
    ),
    quantize: bool = typer.Option(
        False, help="Also enforce the request limit per second (rpm/60), as large providers do."
    ),
    batch_seconds: float = typer.Option(30.0, help="Batch API: seconds a batch takes to complete."),
    batch_window: float = typer.Option(86_400.0, help="Batch API: a batch not done this long expires."),
    batch_expire_first: int = typer.Option(0, help="Batch API: the first N batches expire, half done."),
) -> None:
    """Serve an emulated LLM provider (OpenAI chat completions and Batch API, Ollama chat, Anthropic
    Messages and Message Batches) on HOST:PORT."""
    import os

    key = os.environ.get(api_key_env) if api_key_env else None
    config = EmulatorConfig(
        rpm=rpm, tpm=tpm, window=window, latency_median=latency_median, latency_sigma=latency_sigma,
        per_token_latency=per_token_latency, max_concurrency=max_concurrency, error_rate=error_rate,
        fail_500=fail_500, fail_503=fail_503, drop=drop, hang=hang, malformed=malformed, truncated=truncated,
        bad_label=bad_label, gullible=gullible, api_key=key, seed=seed, limit_headers=limit_headers,
        quantize=quantize, batch_seconds=batch_seconds, batch_window=batch_window,
        batch_expire_first=batch_expire_first,
    )  # fmt: skip
    limits = f"{rpm} requests and {tpm} tokens per {window:g} s" + (", per second too" if quantize else "")
    where = "OpenAI: /v1, Ollama: /api, Anthropic: /v1/messages"
    typer.echo(f"docmill emulator on http://{host}:{port} ({where}); {limits}")
    serve_forever(config, host=host, port=port)


def register(app: typer.Typer) -> None:
    app.command()(emulate)
