"""docmill beside the scripts people write instead, one run, each against its own emulator at 120 RPM.

    python benchmarks/bench_llm_peers.py                      # 120 man pages per variant
    python benchmarks/bench_llm_peers.py --docs 240 --curator /tmp/curator-venv/bin/python

Variants, started together (they are I/O-bound), each with its own ``docmill emulate``-equivalent
server (120 RPM, 1,000,000 TPM so the request limit binds, lognormal latency around 1 s):

* ``docmill --rpm 120``  the CLI: ``docmill run DIR --classifier llm --rpm 120`` (a new journal)
* ``docmill``            the same command without ``--rpm`` (limits learned from the provider)
* ``naive``              ``ThreadPoolExecutor(16)`` + the official ``openai`` client, defaults
                         (its own 2 retries on 429/5xx, honouring Retry-After), one call per page
* ``curator``            bespokelabs-curator's ``LLM`` with the openai backend and its default
                         settings, run by the interpreter given in ``--curator`` (a venv of its
                         own); left out when not given

Figures: wall time, documents answered, documents failed, and the 429s the emulator sent.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.prompt import LabelSpec, build_messages, truncate
from docmill.model.labels import load_labels

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("DOCMILL_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
LABELS = HERE / "manpages.labels.yaml"
RPM, MAX_TOKENS_IN = 120, 300
TIKTOKEN_FILES = "litellm/litellm_core_utils/tokenizers"
CURATOR_SCRIPT = """
import json, sys
from bespokelabs import curator
from pydantic import BaseModel
url, corpus = sys.argv[1], json.load(open(sys.argv[2]))
class Answer(BaseModel):
    label: str
class Classify(curator.LLM):
    response_format = Answer
    def prompt(self, row):
        return row["messages"]
    def parse(self, row, response):
        return {"label": response.label}
llm = Classify(model_name="emulated-small", backend="openai",
               backend_params={"base_url": url, "api_key": "sk-emulated", "require_all_responses": False})
result = llm([{"messages": m} for m in corpus])
rows = result.dataset if hasattr(result, "dataset") else result
print(json.dumps({"ok": len(rows)}))
"""


def write_corpus(root: Path, n: int) -> list[str]:
    """``n`` distinct man pages as text files under ``root``; their texts."""
    files = sorted(p for p in (DATA / "manpages").rglob("*") if p.suffix in (".txt", ".md"))
    if not files:
        sys.exit(f"no man pages under {DATA}/manpages (set DOCMILL_SHARED_DATA)")
    texts = []
    for i in range(n):
        text = f"[{i}] {files[i % len(files)].read_text(errors='replace')}"
        (root / f"doc-{i:04d}.txt").write_text(text)
        texts.append(text)
    return texts


def _messages(texts: list[str]) -> list[list[dict[str, str]]]:
    labels = load_labels(LABELS)
    specs = [LabelSpec(n, labels.descriptions[n], labels.keywords[n]) for n in labels.names]
    return [build_messages(specs, truncate(text, MAX_TOKENS_IN)) for text in texts]


def run_docmill(url: str, corpus: Path, rpm: bool) -> tuple[int, int]:
    db = corpus.parent / f"journal-{'rpm' if rpm else 'learned'}.db"
    command = [sys.executable, "-m", "docmill", "run", str(corpus), "--classifier", "llm"]
    command += ["--labels", str(LABELS), "--base-url", f"{url}/v1", "--model", "emulated-small"]
    command += ["--db", str(db), "--progress", "none"] + (["--rpm", str(RPM)] if rpm else [])
    subprocess.run(command, capture_output=True, check=False, timeout=3600)
    with sqlite3.connect(db) as journal:
        (ok,) = journal.execute("SELECT count(*) FROM documents WHERE status = 'ok'").fetchone()
    return ok, len(list(corpus.iterdir())) - ok


def run_naive(url: str, texts: list[str]) -> tuple[int, int]:
    """The first script: a thread pool over the official client with its default retries."""
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-emulated")

    def classify(messages: Any) -> bool:
        try:
            client.chat.completions.create(
                model="emulated-small",
                messages=messages,
                response_format={"type": "json_object"},
            )
            return True
        except openai.OpenAIError:
            return False

    with ThreadPoolExecutor(16) as pool:
        ok = sum(pool.map(classify, _messages(texts)))
    return ok, len(texts) - ok


def run_curator(url: str, texts: list[str], python: str, work: Path) -> tuple[int, int]:
    corpus = work / "curator-corpus.json"
    corpus.write_text(json.dumps(_messages(texts)))
    env = {**os.environ, "CURATOR_CACHE_DIR": str(work / "curator-cache"), "CURATOR_DISABLE_CACHE": "true"}
    bundled = sorted(Path(python).parents[1].glob(f"lib/python*/site-packages/{TIKTOKEN_FILES}"))
    if bundled:  # offline: litellm ships the encodings tiktoken would download
        env.setdefault("TIKTOKEN_CACHE_DIR", str(bundled[0]))
    done = subprocess.run(
        [python, "-c", CURATOR_SCRIPT, f"{url}/v1", str(corpus)],
        capture_output=True, text=True, env=env, check=False, timeout=3600,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"ok"')]
    if not lines:
        (work / "curator.log").write_text(done.stdout + done.stderr)
        print(f"curator did not finish (exit {done.returncode}); see {work / 'curator.log'}")
        return 0, len(texts)
    ok = int(json.loads(lines[-1])["ok"])
    return ok, len(texts) - ok


def variant(name: str, n: int, curator: str | None, out: multiprocessing.Queue[dict[str, Any]]) -> None:
    config = EmulatorConfig(rpm=RPM, tpm=1_000_000, latency_median=1.0, latency_sigma=0.3, seed=1)
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(config) as server:
        corpus = Path(tmp) / "docs"
        corpus.mkdir()
        texts = write_corpus(corpus, n)
        started = time.monotonic()
        if name.startswith("docmill"):
            ok, failed = run_docmill(server.url, corpus, rpm="--rpm" in name)
        elif name == "naive":
            ok, failed = run_naive(server.url, texts)
        else:
            ok, failed = run_curator(server.url, texts, str(curator), Path(tmp))
        elapsed = time.monotonic() - started
        stats = server.stats()
    out.put({"variant": name, "seconds": round(elapsed, 1), "ok": ok, "failed": failed,
             "requests": stats["requests"], "429s": stats["rate_limited"]})  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--docs", type=int, default=120)
    parser.add_argument("--curator", help="python of a venv with bespokelabs-curator installed")
    args = parser.parse_args()
    names = [f"docmill --rpm {RPM}", "docmill", "naive"] + (["curator"] if args.curator else [])
    out: multiprocessing.Queue[dict[str, Any]] = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=variant, args=(nm, args.docs, args.curator, out)) for nm in names]
    for proc in procs:
        proc.start()
    rows = {row["variant"]: row for row in (out.get() for _ in procs)}
    for proc in procs:
        proc.join()
    ideal = args.docs / RPM * 60
    print(
        f"{args.docs} man pages per variant, emulator at {RPM} RPM, 1 s median latency; ideal {ideal:.0f} s"
    )
    print("| variant | wall s | × ideal | ok | failed | requests | 429s seen |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        r = rows[name]
        cells = [name, r["seconds"], f"{r['seconds'] / ideal:.2f}", r["ok"], r["failed"]]
        cells += [r["requests"], r["429s"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
