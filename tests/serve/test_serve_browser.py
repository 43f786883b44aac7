"""The page in a real browser (Debian's chromium) while a real ``docmill run`` is in progress."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serve_kit import (
    BROKEN_PDF,
    RPM,
    TPM,
    Corpus,
    command_env,
    docmill_command,
    docmill_run,
    free_port,
    make_corpus,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "serve"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-test-token"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Corpus, subprocess.Popen[bytes]]]:
    """A slow ``docmill run`` in progress and ``docmill serve --token`` over its journal."""
    root = tmp_path_factory.mktemp("live")
    corpus = make_corpus(root / "corpus", 90)
    db = root / "docmill.db"
    run_args = ["run", str(corpus.root), "--db", str(db), "-s", "threads", "-w", "2", "-c", "slow:0.15"]
    runner = subprocess.Popen(
        docmill_command(*run_args, "--progress", "none", slow=True),
        env=command_env(),
        stderr=subprocess.DEVNULL,
    )
    _wait_until(db.exists, 30, "the journal to appear")
    try:
        with serving(db, TOKEN) as url:
            yield url, corpus, runner
    finally:
        _stop(runner)


@contextlib.contextmanager
def serving(db: Path, token: str | None = None) -> Iterator[str]:
    """``docmill serve`` over ``db`` on a free port; yields the page's URL."""
    port = free_port()
    args = ["serve", "--db", str(db), "--port", str(port), *(["--token", token] if token else [])]
    server = subprocess.Popen(docmill_command(*args), env=command_env(), stdout=subprocess.DEVNULL)
    query = f"?token={token}" if token else ""
    try:
        _wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz{query}"), 30, "the server")
        yield f"http://127.0.0.1:{port}/"
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _done(page: object) -> int:
    text = page.locator("#bar-text").inner_text()  # type: ignore[attr-defined]
    match = re.match(r"([\d,]+)", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def test_watch_a_run_open_a_failure_and_find_an_odd_path(
    browser: object, live: tuple[str, Corpus, subprocess.Popen[bytes]]
) -> None:  # the browser first: on a busy machine its start-up alone can outlast a short run
    url, corpus, runner = live
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}?token={TOKEN}")
    assert "token" not in page.url  # the page swaps it for a SameSite=Strict cookie

    expect(page.locator("#run-state")).to_have_text("running", timeout=15_000)
    expect(page.locator("#bar-text")).to_contain_text("documents")
    first = _done(page)
    _wait_until(lambda: _done(page) > first, 15, "progress to advance on the page")
    assert runner.poll() is None, "the run finished before the page could watch it"
    page.screenshot(path=str(ARTIFACTS / "1-run-in-progress.png"), full_page=True)

    broken = page.locator("#rows tr", has_text=BROKEN_PDF)
    broken.wait_for(timeout=60_000)
    broken.click()
    dialog = page.locator("#doc")
    dialog.wait_for(state="visible")
    expect(dialog.locator("#doc-path")).to_have_text(BROKEN_PDF)
    expect(dialog.locator("#doc-fields")).to_contain_text("Error")
    page.screenshot(path=str(ARTIFACTS / "2-failure-detail.png"))
    page.keyboard.press("Escape")

    expect(page.locator("#run-state")).to_have_text("done", timeout=60_000)
    total = len(corpus.good) + len(corpus.bad)
    assert _done(page) == total
    assert page.locator("#t-failures").inner_text() == str(len(corpus.bad))

    page.click("#tab-all")
    page.fill("#f-path", "#7 & ü — naïve")
    row = page.locator("#rows tr", has_text="invoice #7 & ü — naïve.txt")
    row.wait_for()
    assert page.locator("#rows tr").count() == 1
    row.click()
    expect(page.locator("#doc-path")).to_have_text(corpus.invoices[7])
    expect(page.locator("#doc-fields")).to_contain_text("invoice")
    page.keyboard.press("Escape")
    href = page.locator("#export-csv").get_attribute("href") or ""
    assert "run=1" in href
    export = page.request.get(url + href)  # with the page's cookie, as a click would
    assert export.ok
    assert "invoice #7 & ü — naïve.txt" in export.text()
    page.screenshot(path=str(ARTIFACTS / "3-run-done.png"), full_page=True)
    assert not errors


def test_without_the_token_the_page_gets_nothing(
    live: tuple[str, Corpus, subprocess.Popen[bytes]], browser: object
) -> None:
    url, _, _ = live
    page = browser.new_page()  # type: ignore[attr-defined]
    response = page.goto(url)
    assert response is not None and response.status == 401


def test_llm_panel_shows_usage_against_the_limits(llm_run: tuple[Path, Corpus], browser: object) -> None:
    db, corpus = llm_run
    with serving(db) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(url)
        panel = page.locator("#llm")
        expect(panel).to_be_visible(timeout=15_000)
        expect(page.locator("#v-req")).to_have_text(str(len(corpus.good)))
        expect(page.locator("#v-rpm")).to_contain_text(f"/ {RPM:,}")
        expect(page.locator("#v-tpm")).to_contain_text(f"/ {TPM:,}")
        expect(page.locator("#llm-basis")).to_contain_text("average")
        expect(page.locator("#v-conc")).to_have_text(_concurrency(db))
        expect(page.locator("#batches-card")).to_be_hidden()
        page.screenshot(path=str(ARTIFACTS / "4-llm-run.png"), full_page=True)


def test_pages_per_second_beside_docs_per_second(browser: object, tmp_path: Path) -> None:
    pdfs = sorted((Path(__file__).resolve().parents[2] / "examples" / "corpus").rglob("*.pdf"))
    for i, pdf in enumerate(pdfs):
        shutil.copy(pdf, tmp_path / f"{i:02d}.pdf")
    db = tmp_path / "docmill.db"
    docmill_run(tmp_path, db, "--ocr", "never", "-c", "none")
    with serving(db) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(url)
        expect(page.locator("#run-state")).to_have_text("done", timeout=15_000)
        expect(page.locator("#tile-pages")).to_be_visible()
        expect(page.locator("#t-pages")).not_to_have_text("–")
        expect(page.locator("#bar-text")).to_contain_text(f"{len(pdfs) - 1} pages")  # one PDF is corrupt
        page.screenshot(path=str(ARTIFACTS / "5-pages.png"))


def _concurrency(db: Path) -> str:
    """The concurrency figure the page should show: latest "of" most seen, from the run's stats."""
    from docmill.journal.sqlite import SqliteJournal

    with SqliteJournal(db) as journal:
        record = journal.run(1)
    assert record is not None
    llm = record.stats["llm"]
    return f"{llm['concurrency']:,} of {llm['max_concurrency']:,}"


def test_batches_card_shows_where_the_batches_are(batch_run: Path, browser: object) -> None:
    from docmill.batch.report import batch_summary
    from docmill.journal.sqlite import SqliteJournal

    with SqliteJournal(batch_run, read_only=True) as journal:
        shown = batch_summary(journal, journal.run(1))
    assert shown
    with serving(batch_run) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(url)
        card = page.locator("#batches-card")
        expect(card).to_be_visible(timeout=5_000)
        for key in ("batches", "submitted", "completed", "failed", "requests"):
            expect(card.locator(f'[data-batch="{key}"] b')).to_have_text(f"{shown[key]:,}")
        expect(card.locator('[data-batch="in_progress"]')).to_have_class("zero")
        expect(card.locator('[data-batch="saved"] b')).to_have_text(f"${shown['saved']:.4f}")
        page.screenshot(path=str(ARTIFACTS / "6-batches.png"))


def test_spent_by_task_beside_spent_by_step(browser: object, tmp_path: Path) -> None:
    from docmill.cli.main import main
    from docmill.llm.emulator import EmulatorConfig
    from docmill.llm.emulator_server import EmulatorServer

    tasks = "tasks:\n  kind: {labels: {invoice: {keywords: [invoice]}, report: {keywords: [report]}}}\n"
    tasks += "  tone: {labels: {urgent: {keywords: [urgent]}, calm: {keywords: [dear]}}}\n"
    (tmp_path / "tasks.yaml").write_text(tasks)
    (tmp_path / "llm.yaml").write_text(
        "llm: {price_input_per_1m: 1.0, cache: false, tasks_per_request: one}\n"
    )
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("Invoice 12, urgent.")
    db = tmp_path / "docmill.db"
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0)) as emulator:
        extra = ["--labels", str(tmp_path / "tasks.yaml"), "--config", str(tmp_path / "llm.yaml")]
        extra += ["-c", "llm", "--model", "emulated-small", "--base-url", f"{emulator.url}/v1"]
        assert main(["run", str(tmp_path / "corpus"), "--db", str(db), "--progress", "none", *extra]) == 0
    with serving(db) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(url)
        expect(page.locator("#step-costs-card")).to_be_visible(timeout=15_000)
        expect(page.locator("#task-costs li")).to_have_count(2)
        expect(page.locator("#task-costs")).to_contain_text("kind")
        expect(page.locator("#task-costs-shared")).to_be_hidden()
