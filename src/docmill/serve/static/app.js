// docmill dashboard: polls the JSON API about once a second and redraws what changed.
// Plain DOM, no framework; every value from the journal goes in through textContent.
"use strict";

const POLL_MS = 1000;
const SLOW_POLL_MS = 5000;
const PAGE = 50;
const FAILURE_STATUSES = ["failed", "quarantined", "crashed"];
const ALL_STATUSES = ["ok", "empty", "duplicate", "failed", "quarantined", "crashed"];
const STATUS_COLOURS = {
  ok: "var(--ok)", empty: "var(--empty)", duplicate: "var(--dup)",
  failed: "var(--bad)", quarantined: "var(--warn)", crashed: "var(--crash)",
};

const state = {
  runs: [], runId: null, tab: "failures", offset: 0,
  filters: { status: "", error: "", label: "", path: "" },
  lastRows: "", lastTypes: 0, lastLabels: "",
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// ---- formatting ------------------------------------------------------------------------------

const fmtInt = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));

function fmtRate(n) {
  if (n == null) return "–";
  return n >= 100 ? fmtInt(n) : n.toFixed(n >= 10 ? 1 : 2);
}

function fmtDuration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

const fmtMoney = (n) => (n == null ? "–" : `$${n < 1 ? n.toFixed(4) : n.toFixed(2)}`);
const fmtTime = (t) => (t == null ? "–" : new Date(t * 1000).toLocaleTimeString());
const fmtDate = (t) => (t == null ? "–" : new Date(t * 1000).toLocaleString());

// ---- API -----------------------------------------------------------------------------------------

async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value != null) query.append(key, value);
  }
  const url = "api/" + path + (query.toString() ? "?" + query : "");
  const response = await fetch(url, { headers: { accept: "application/json" }, cache: "no-store" });
  if (!response.ok) throw new Error(`${response.status} ${url}`);
  return response.json();
}

const docUrl = (path) => "documents/" + path.split("/").map(encodeURIComponent).join("/");

// ---- runs list -----------------------------------------------------------------------------------

function renderRuns() {
  const list = $("runs");
  list.replaceChildren(...state.runs.map(runItem));
  $("no-runs").hidden = state.runs.length > 0;
}

function runItem(run) {
  const fraction = run.progress.fraction;
  const fill = el("div", { class: "fill" });
  fill.style.width = `${Math.round((fraction ?? 0) * 100)}%`;
  const item = el("li", { class: "run-item", "data-run": String(run.id), "aria-current": String(run.id === state.runId) },
    el("div", { class: "run-line" },
      el("strong", { text: `#${run.id}` }),
      el("span", { class: "muted", text: `${run.strategy} × ${run.workers}` }),
      el("span", { class: `badge ${run.state}`, text: run.state })),
    el("div", { class: "mini bar" }, fill),
    el("div", { class: "muted small", text: `${fmtInt(run.progress.done)}${run.progress.total != null ? " / " + fmtInt(run.progress.total) : ""} · ${fmtDate(run.started)}` }));
  item.addEventListener("click", () => selectRun(run.id));
  return item;
}

function selectRun(id) {
  if (state.runId === id) return;
  state.runId = id;
  state.offset = 0;
  state.lastRows = state.lastLabels = "";
  state.lastTypes = 0;
  renderRuns();
  refreshRun();
}

// ---- one run -------------------------------------------------------------------------------------

function renderRun(run) {
  $("run").hidden = false;
  $("run-title").textContent = `Run #${run.id} · ${run.strategy} × ${run.workers} workers`;
  const badge = $("run-state");
  badge.textContent = run.state;
  badge.className = `badge ${run.state}`;
  $("run-source").textContent = `${run.source}  ·  started ${fmtDate(run.started)}`;
  renderProgress(run);
  renderSummary(run.summary);
  renderLlm(run);
}

function renderProgress(run) {
  const p = run.progress;
  const pct = p.fraction == null ? null : Math.round(p.fraction * 1000) / 10;
  $("bar-fill").style.width = `${pct ?? 0}%`;
  $("bar").setAttribute("aria-valuenow", String(pct ?? 0));
  $("bar").className = `bar ${run.state === "running" ? "active" : run.state}`;
  const total = p.total == null ? "" : ` / ${fmtInt(p.total)}`;
  const pages = pagesOf(run);
  const pagesText = pages ? ` · ${fmtInt(pages.count)} pages` : "";
  $("bar-text").textContent = `${fmtInt(p.done)}${total} documents${pagesText}${pct == null ? "" : ` · ${pct}%`}`;
  $("t-rate").textContent = fmtRate(p.docs_per_second);
  $("tile-pages").hidden = !pages;
  $("t-pages").textContent = pages ? fmtRate(pages.rate) : "–";
  $("t-elapsed").textContent = fmtDuration(p.elapsed_seconds);
  $("t-eta").textContent = run.state === "running" ? fmtDuration(p.eta_seconds) : run.state === "done" ? "done" : "–";
  $("t-failures").textContent = fmtInt(run.summary.failures);
  $("t-failures").classList.toggle("bad", run.summary.failures > 0);
}

// Pages (PDF pages, image frames), counted like documents (the journal's or the fresher heartbeat's);
// the rate is the run's own once it has met pages, else the journal's. Null when there are none.
function pagesOf(run) {
  const p = run.progress;
  const s = run.summary || {};
  const count = Math.max(p.pages || 0, s.pages || 0);
  if (!count) return null;
  return { count, rate: p.pages ? p.pages_per_second : s.pages_per_second };
}

function renderSummary(summary) {
  const total = Math.max(1, summary.total);
  const entries = ALL_STATUSES.map((s) => [s, summary.by_status[s] || 0]);
  $("status-bar").replaceChildren(...entries.filter(([, n]) => n > 0).map(([s, n]) => {
    const part = el("div", { title: `${s}: ${n}` });
    part.style.width = `${(n / total) * 100}%`;
    part.style.background = STATUS_COLOURS[s];
    return part;
  }));
  $("status-legend").replaceChildren(...entries.map(([s, n]) => {
    const swatch = el("i");
    swatch.style.background = STATUS_COLOURS[s];
    return el("li", { class: n ? "" : "zero" }, swatch, el("span", { text: s }), el("b", { text: fmtInt(n) }));
  }));
  renderLabels(summary.by_label);
  renderTasks(summary.by_task || {});
  renderStepCosts(summary.cost_by_step || {}, summary.cost_by_task || {});
  renderBatches(summary.batches);
}

// The provider batches of a run that used --batch, as `docmill status` counts them.
const BATCH_COUNTS = [["batches", "Batches"], ["submitted", "Submitted"], ["in_progress", "In progress"],
  ["completed", "Completed"], ["failed", "Failed or expired"], ["requests", "Requests"]];

function renderBatches(batches) {
  $("batches-card").hidden = !batches;
  if (!batches) return;
  const item = (key, name, text, zero) => el("li", { class: zero ? "zero" : "", "data-batch": key },
    el("span", { class: "name", text: name }), el("b", { text }));
  $("batches").replaceChildren(
    ...BATCH_COUNTS.map(([key, name]) => item(key, name, fmtInt(batches[key]), !batches[key])),
    item("cost", "Spent", fmtMoney(batches.cost), false), item("saved", "Saved", fmtMoney(batches.saved), false));
}

// What the classifier and each of your own steps spent (USD), when a step of yours called the LLM;
// beside it, each task's requests and cost, or the one request per document that served them all.
function renderStepCosts(costs, byTask) {
  const entries = Object.entries(costs);
  const tasks = Object.entries(byTask.tasks || {});
  const shared = byTask.shared;
  $("step-costs-card").hidden = entries.length === 0 && tasks.length === 0 && !shared;
  $("step-costs").replaceChildren(...entries.map(([step, usd]) =>
    el("li", {}, el("span", { class: "name", text: step, title: step }), el("b", { text: `$${usd.toFixed(4)}` }))));
  $("task-costs").replaceChildren(...tasks.map(([task, used]) =>
    el("li", {}, el("span", { class: "name", text: task, title: `${task}: ${fmtInt(used.requests)} requests` }),
      el("b", { text: `$${used.cost.toFixed(4)}` }))));
  $("task-costs-shared").hidden = !shared;
  $("task-costs-shared").textContent = shared
    ? `One request per document serves ${shared.asked.join(", ")}: ${fmtInt(shared.requests)} requests, $${shared.cost.toFixed(4)} (not split by task).`
    : "";
}

function bars(counts) {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  return entries.slice(0, 12).map(([label, n]) => {
    const fill = el("div");
    fill.style.width = `${(n / max) * 100}%`;
    return el("li", {}, el("span", { class: "name", text: label, title: label }), el("div", { class: "track" }, fill), el("b", { text: fmtInt(n) }));
  });
}

// One list of label counts per task of a labels file with tasks (a multi-label answer counts each label).
function renderTasks(byTask) {
  const tasks = Object.entries(byTask);
  $("tasks-card").hidden = tasks.length === 0;
  $("tasks").replaceChildren(...tasks.map(([task, counts]) =>
    el("div", { class: "task" }, el("h4", { text: task }), el("ul", { class: "hbars" }, ...bars(counts)))));
}

function renderLabels(byLabel) {
  const entries = Object.entries(byLabel).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  $("labels").replaceChildren(...entries.slice(0, 12).map(([label, n]) => {
    const fill = el("div");
    fill.style.width = `${(n / max) * 100}%`;
    return el("li", {}, el("span", { class: "name", text: label, title: label }), el("div", { class: "track" }, fill), el("b", { text: fmtInt(n) }));
  }));
  $("no-labels").hidden = entries.length > 0;
  const key = entries.map(([label]) => label).sort().join("\u0000");
  if (key !== state.lastLabels) {
    state.lastLabels = key;
    fillSelect($("f-label"), entries.map(([label]) => label).sort(), state.filters.label);
  }
}

// ---- LLM panel: shown only when the run's stats carry LLM figures --------------------------------

const llmSamples = new Map(); // run id → recent [seconds, requests, tokens] for per-minute rates
const RATE_WINDOW = 60;

function llmFigures(run) {
  const stats = run.stats || {};
  const llm = stats.llm && typeof stats.llm === "object" && Object.keys(stats.llm).length ? stats.llm : null;
  if (!llm) return null;
  const limits = findLimits(run.config || {});
  const requests = llm.requests ?? 0, tokens = (llm.tokens_in ?? 0) + (llm.tokens_out ?? 0);
  const [rpm, tpm] = perMinute(run, requests, tokens);
  const executor = stats.executor || {};
  return {
    rpm: llm.requests_per_minute ?? rpm, tpm: llm.tokens_per_minute ?? tpm,
    rpmLimit: llm.rpm_limit ?? limits.rpm, tpmLimit: llm.tpm_limit ?? limits.tpm,
    concurrency: llm.concurrency ?? stats.concurrency ?? executor.concurrency,
    concurrencyLimit: llm.max_concurrency ?? executor.max_concurrency,
    requests, tokensIn: llm.tokens_in, tokensOut: llm.tokens_out, cached: llm.cached,
    cost: stats.cost ?? llm.cost,
  };
}

function findLimits(config) {
  for (const scope of [config.llm, config.classifier, config.settings, config]) {
    if (scope && typeof scope === "object" && (scope.rpm != null || scope.tpm != null)) return scope;
  }
  return {};
}

// Requests and tokens per minute over the last minute of samples; the run's average until then.
function perMinute(run, requests, tokens) {
  const now = Date.now() / 1000;
  const samples = (llmSamples.get(run.id) || []).filter(([t]) => now - t <= RATE_WINDOW);
  samples.push([now, requests, tokens]);
  llmSamples.set(run.id, samples);
  const [t0, r0, k0] = samples[0];
  if (run.state === "running" && now - t0 >= 5) return [((requests - r0) / (now - t0)) * 60, ((tokens - k0) / (now - t0)) * 60];
  const minutes = (run.stats.wall_seconds || run.progress.elapsed_seconds || 0) / 60;
  return minutes > 0 ? [requests / minutes, tokens / minutes] : [null, null];
}

function renderLlm(run) {
  const f = llmFigures(run);
  for (const node of document.querySelectorAll(".llm-only")) node.hidden = !f;
  if (!f) return;
  gauge("rpm", f.rpm, f.rpmLimit);
  gauge("tpm", f.tpm, f.tpmLimit);
  $("llm-basis").textContent = run.state === "running"
    ? "rates over the last minute, against the configured limits"
    : "average rates over the run, against the configured limits";
  for (const node of document.querySelectorAll(".conc")) node.hidden = f.concurrency == null;
  $("v-conc").textContent = f.concurrency == null ? "–" : `${fmtInt(f.concurrency)}${f.concurrencyLimit ? " of " + fmtInt(f.concurrencyLimit) : ""}`;
  $("v-req").textContent = `${fmtInt(f.requests)}${f.cached ? ` (+${fmtInt(f.cached)} cached)` : ""}`;
  $("v-tok").textContent = `${fmtInt(f.tokensIn)} / ${fmtInt(f.tokensOut)}`;
  $("v-cost").textContent = $("t-cost").textContent = fmtMoney(f.cost);
}

function gauge(name, value, limit) {
  const fraction = limit ? Math.min(1, (value || 0) / limit) : 0;
  const bar = $(`g-${name}`);
  bar.style.width = `${fraction * 100}%`;
  bar.className = fraction > 0.9 ? "hot" : "";
  $(`v-${name}`).textContent = `${fmtInt(value)}${limit ? " / " + fmtInt(limit) : ""}`;
}

// ---- throughput chart (hand-drawn SVG) -----------------------------------------------------------

function renderChart(series) {
  const svg = $("chart");
  const points = series.points;
  const max = Math.max(0, ...points.map((p) => p.docs_per_second));
  const top = niceCeil(max);
  const w = 600, h = 180, n = Math.max(1, points.length - 1);
  const xy = points.map((p, i) => [(i / n) * w, h - (p.docs_per_second / top) * (h - 8)]);
  const line = xy.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
  const ns = "http://www.w3.org/2000/svg";
  const grid = [0.25, 0.5, 0.75].map((f) => svgEl(ns, "line", { x1: 0, x2: w, y1: h - f * (h - 8), y2: h - f * (h - 8), class: "grid" }));
  const shapes = points.length ? [
    svgEl(ns, "path", { d: `${line}L${w},${h}L0,${h}Z`, class: "area" }),
    svgEl(ns, "path", { d: line, class: "line" }),
  ] : [];
  svg.replaceChildren(...grid, ...shapes);
  $("chart-start").textContent = points.length ? fmtTime(points[0].t) : "";
  $("chart-end").textContent = points.length ? fmtTime(points[points.length - 1].t + series.bucket_seconds) : "";
  $("chart-max").textContent = `peak ${fmtRate(max)} docs/s · scale ${fmtRate(top)}`;
}

// At least ~2 s per bucket so the line shows the trend rather than batch-commit jitter.
function chartBuckets(run) {
  return Math.max(5, Math.min(60, Math.floor(run.progress.elapsed_seconds / 2)));
}

function svgEl(ns, tag, attrs) {
  const node = document.createElementNS(ns, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function niceCeil(x) {
  if (x <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 2.5, 5, 10].map((m) => m * step).find((v) => v >= x);
}

// ---- documents table, filters, detail ------------------------------------------------------------

function tableParams() {
  const f = state.filters;
  const failures = state.tab === "failures";
  return {
    run: state.runId, status: f.status || (failures ? FAILURE_STATUSES.join(",") : ""),
    error_type: failures ? f.error : "", label: f.label, path: f.path,
  };
}

async function refreshTable() {
  const params = { ...tableParams(), limit: PAGE, offset: state.offset };
  const page = await api(state.tab === "failures" ? "failures" : "documents", params);
  const key = JSON.stringify([params, page]);
  if (key === state.lastRows) return;
  state.lastRows = key;
  renderRows(page);
  renderExports(params);
}

function renderRows(page) {
  const rows = page.items.map((doc) => {
    const error = doc.error_type ? `${doc.error_type}: ${doc.error_message ?? ""}` : "";
    const tr = el("tr", { tabindex: "0", "data-path": doc.path },
      el("td", { class: "mono path", text: doc.path, title: doc.path }),
      el("td", {}, el("span", { class: `badge ${doc.status}`, text: doc.status })),
      el("td", { text: doc.label ?? "" }),
      el("td", { class: "error", text: error, title: error }),
      el("td", { class: "num", text: String(doc.attempts) }),
      el("td", { class: "num", text: doc.seconds == null ? "" : doc.seconds.toFixed(2) }),
      el("td", { class: "num", text: fmtTime(doc.finished) }));
    tr.addEventListener("click", () => openDocument(doc.path));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") openDocument(doc.path); });
    return tr;
  });
  const empty = el("tr", {}, el("td", { colspan: "7", class: "muted empty", text: state.tab === "failures" ? "No failures." : "No documents match." }));
  $("rows").replaceChildren(...(rows.length ? rows : [empty]));
  const last = Math.min(page.total, page.offset + page.items.length);
  $("page-info").textContent = page.total ? `${fmtInt(page.offset + 1)}–${fmtInt(last)} of ${fmtInt(page.total)}` : "";
  $("prev").disabled = page.offset === 0;
  $("next").disabled = last >= page.total;
}

function renderExports(params) {
  const query = new URLSearchParams();
  for (const key of ["run", "status", "label", "path"]) if (params[key]) query.append(key, params[key]);
  $("export-csv").href = `api/export.csv?${query}`;
  $("export-jsonl").href = `api/export.jsonl?${query}`;
}

async function refreshErrorTypes() {
  const body = await api(`runs/${state.runId}/errors`);
  fillSelect($("f-error"), Object.keys(body.error_types), state.filters.error, body.error_types);
}

function fillSelect(select, values, current, counts = null) {
  const options = [el("option", { value: "", text: "any" })];
  for (const value of values) options.push(el("option", { value, text: counts ? `${value} (${counts[value]})` : value }));
  if (current && !values.includes(current)) options.push(el("option", { value: current, text: current }));
  select.replaceChildren(...options);
  select.value = current;
}

async function openDocument(path) {
  const doc = await api(docUrl(path), { run: state.runId });
  $("doc-title").textContent = doc.status === "ok" ? "Document" : `Document · ${doc.status}`;
  $("doc-path").textContent = doc.path;
  const fields = [
    ["Status", doc.status], ["Label", doc.label], ["Score", doc.score == null ? null : doc.score.toFixed(3)],
    ["Error", doc.error_type ? `${doc.error_type}: ${doc.error_message ?? ""}` : null],
    ["Attempts", doc.attempts], ["Failures", doc.failures], ["Duplicate of", doc.duplicate_of],
    ["SHA-256", doc.sha256], ["Size", doc.size == null ? null : `${fmtInt(doc.size)} bytes`],
    ["Started", fmtDate(doc.started)], ["Finished", fmtDate(doc.finished)],
    ["Seconds", doc.seconds == null ? null : doc.seconds.toFixed(3)], ["Worker", doc.worker], ["Run", doc.run_id],
  ];
  $("doc-fields").replaceChildren(...fields.filter(([, v]) => v != null && v !== "").flatMap(([k, v]) => [
    el("dt", { text: k }), el("dd", { class: k === "Error" ? "error-text" : k === "SHA-256" ? "mono" : "", text: String(v) })]));
  const hasResult = Object.keys(doc.result || {}).length > 0;
  $("doc-result-title").hidden = $("doc-result").hidden = !hasResult;
  $("doc-result").textContent = JSON.stringify(doc.result, null, 2);
  if (!$("doc").open) $("doc").showModal();
}

function bindControls() {
  for (const tab of ["failures", "all"]) {
    $(`tab-${tab}`).addEventListener("click", () => {
      state.tab = tab;
      state.offset = 0;
      $("tab-failures").setAttribute("aria-selected", String(tab === "failures"));
      $("tab-all").setAttribute("aria-selected", String(tab === "all"));
      $("f-error-wrap").hidden = tab !== "failures";
      fillSelect($("f-status"), tab === "failures" ? FAILURE_STATUSES : ALL_STATUSES, "");
      state.filters.status = "";
      refreshTable();
    });
  }
  const bind = (id, key, event) => $(id).addEventListener(event, () => {
    state.filters[key] = $(id).value;
    state.offset = 0;
    refreshTable();
  });
  bind("f-status", "status", "change");
  bind("f-error", "error", "change");
  bind("f-label", "label", "change");
  bind("f-path", "path", "input");
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); refreshTable(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; refreshTable(); });
  fillSelect($("f-status"), FAILURE_STATUSES, "");
}

// ---- polling -------------------------------------------------------------------------------------

async function refreshRun() {
  if (state.runId == null) return;
  const id = state.runId;
  const run = await api(`runs/${id}`);
  const series = await api(`runs/${id}/throughput`, { buckets: chartBuckets(run) });
  if (id !== state.runId) return;
  renderRun(run);
  renderChart(series);
  await refreshTable();
}

async function poll() {
  const started = performance.now();
  try {
    state.runs = (await api("runs")).runs;
    if (state.runId == null && state.runs.length) state.runId = pickRun(state.runs);
    renderRuns();
    await refreshRun();
    if (state.runId != null && Date.now() - state.lastTypes > SLOW_POLL_MS) {
      state.lastTypes = Date.now();
      await refreshErrorTypes();
    }
    setLive("live", `live · updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setLive("error", `cannot reach the server (${err.message}); retrying…`);
  }
  // Back off when the server is slow (a huge journal) and when nobody is looking.
  const took = performance.now() - started;
  setTimeout(poll, document.hidden ? SLOW_POLL_MS : Math.max(POLL_MS, 2 * took));
}

function pickRun(runs) {
  const wanted = Number(new URLSearchParams(location.search).get("run"));
  if (runs.some((r) => r.id === wanted)) return wanted;
  return (runs.find((r) => r.state === "running") || runs[0]).id;
}

function setLive(kind, text) {
  $("live").dataset.state = kind;
  $("live").textContent = text;
}

function forgetTokenInAddressBar() {
  const url = new URL(location.href);
  if (!url.searchParams.has("token")) return;
  url.searchParams.delete("token"); // the server has set a SameSite=Strict cookie in its place
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

forgetTokenInAddressBar();
bindControls();
poll();
