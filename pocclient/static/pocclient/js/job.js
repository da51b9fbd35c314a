// One job's live progress, polled from GET /api/jobs/<key>: counts by state and status, calls
// per second, ETA, the latency histogram, a progress bar whose colour says whether calls fail,
// the worker warning, the buttons its state allows, and its results (sortable, a page at a
// time). The job's key is in the page's address (?job=<key>), so a reload, or a server that
// restarts, finds it again: the job lives in the database, not in this page.

import { $, $$, el, formatDuration, formatMs, formatTime, show, statusClass } from "./dom.js";
import { drawHistogram } from "./histogram.js";
import { ApiError, getJSON, postJSON } from "./http.js";

const ACTIVE = new Set(["planning", "running", "paused"]);
const PAUSED_POLL_MS = 2000;
// Each look counts the job's items: a large job is looked at less often.
const pollMs = (total) => (total <= 10_000 ? 700 : total <= 100_000 ? 2000 : 5000);
const RESULTS_EVERY_MS = 2000; // while running; always once it ends
const RESULTS_PAGE_SIZE = 50;
const BUTTONS = {
  pause: ["#job-pause", "pause", null],
  resume: ["#job-resume", "resume", null],
  cancel: ["#job-cancel", "cancel", null],
  resend_failed: ["#job-resend-failed", "resend", { state: "failed" }],
  resend_unknown: ["#job-resend-unknown", "resend", { state: "unknown" }],
};

export function jobFromAddress() {
  return new URLSearchParams(window.location.search).get("job");
}

export class JobView {
  constructor(config, { onChange }) {
    this.config = config;
    this.url = config.urls.jobs;
    this.onChange = onChange;
    this.canView = config.permissions.view_exchange;
    this.key = null;
    this.job = null;
    this.timer = null;
    this.failures = 0;
    this.order = "index";
    this.page = 1;
    this.resultsAt = 0;
    this.resultsDone = -1;
    for (const [action, [selector, path, body]] of Object.entries(BUTTONS)) {
      $(selector).addEventListener("click", () => this.act(action, path, body));
    }
    if (this.canView) {
      for (const button of $$("#batch-details button.sort")) {
        button.addEventListener("click", () => this.sort(button.dataset.sort));
      }
      $("#results-prev").addEventListener("click", () => this.results(this.page - 1));
      $("#results-next").addEventListener("click", () => this.results(this.page + 1));
    }
  }

  // Follow the job with this key; ``remember`` puts it in the address (a new history entry).
  open(key, { remember = true, job = null } = {}) {
    if (remember && key !== jobFromAddress()) {
      const address = new URL(window.location.href);
      address.searchParams.set("job", key);
      window.history.pushState({ job: key }, "", address);
    }
    clearTimeout(this.timer);
    if (key !== this.key) {
      this.key = key;
      this.job = null;
      this.order = "index";
      this.page = 1;
      this.resultsDone = -1;
      this.message("");
      $("#batch-results")?.replaceChildren();
    }
    show($("#job"));
    if (job) this.render(job);
    this.poll();
  }

  close() {
    clearTimeout(this.timer);
    this.key = null;
    this.job = null;
    show($("#job"), false);
  }

  message(text) {
    $("#job-message").textContent = text;
  }

  async poll() {
    clearTimeout(this.timer);
    const key = this.key;
    if (!key) return;
    let job;
    try {
      job = await getJSON(`${this.url}/${encodeURIComponent(key)}`);
    } catch (error) {
      if (key !== this.key) return;
      if (error instanceof ApiError && error.status === 404) {
        this.message(`There is no job ${key}.`);
        return;
      }
      // The server restarting, or the network: the job goes on there; ask again, less often.
      this.failures += 1;
      const wait = Math.min(5000, 500 * 2 ** this.failures);
      this.message(`Lost contact with the server (${error.message}); asking again in ${Math.round(wait / 1000)} s. The job goes on there.`);
      this.timer = setTimeout(() => this.poll(), wait);
      return;
    }
    if (key !== this.key) return;
    if (this.failures) this.message("");
    this.failures = 0;
    const was = this.job?.state;
    this.render(job);
    const active = ACTIVE.has(job.state);
    if (this.canView && (job.done !== this.resultsDone || !active)) {
      if (!active || Date.now() - this.resultsAt > RESULTS_EVERY_MS) this.results(this.page);
    }
    if (was && was !== job.state) this.onChange?.();
    if (active) this.timer = setTimeout(() => this.poll(), job.state === "paused" ? PAUSED_POLL_MS : pollMs(job.total));
  }

  render(job) {
    this.job = job;
    const state = $("#job-state");
    state.dataset.state = job.state;
    state.textContent = job.state_label;
    $("#job-name").textContent = job.name || `Job ${job.key.slice(0, 8)}`;
    const made = [job.connection ? `on ${job.connection}` : "", job.created_by ? `by ${job.created_by}` : "", `made ${formatTime(job.created_at)}`, `concurrency ${job.concurrency}`, `job ${job.key}`];
    $("#job-meta").textContent = made.filter(Boolean).join(" · ");
    $("#job-warning").textContent = job.warning || "";
    show($("#job-warning"), Boolean(job.warning));
    for (const [action, [selector]] of Object.entries(BUTTONS)) show($(selector), job.actions.includes(action));
    if (job.counts.failed) $("#job-resend-failed").textContent = `Send ${job.counts.failed} failed again`;
    if (job.counts.unknown) $("#job-resend-unknown").textContent = `Send ${job.counts.unknown} unknown again`;

    const percent = job.total ? Math.floor((job.done / job.total) * 100) : 0;
    const progress = $("#batch-progress");
    progress.setAttribute("aria-valuemax", job.total);
    progress.setAttribute("aria-valuenow", job.done);
    progress.dataset.percent = percent;
    progress.dataset.failing = String(job.failing > 0);
    progress.title = job.failing ? `${job.failing} of the calls failed or were answered with an error` : "";
    $(".bar", progress).style.width = `${percent}%`;
    $("#batch-progress-text").textContent = `${job.done} / ${job.total} (${percent}%)`;

    const outcomes = [
      ...Object.entries(job.by_status).map(([status, count]) => [status, count, statusClass(Number(status))]),
      ...Object.entries(job.by_error).map(([code, count]) => [code, count, "err"]),
    ];
    if (job.counts.cancelled) outcomes.push(["cancelled", job.counts.cancelled, ""]);
    $("#batch-counts").replaceChildren(...outcomes.map(([label, count, kind]) => el("span", { class: `badge ${kind}` }, `${label} × ${count}`)));
    $("#job-states").replaceChildren(
      ...Object.entries(job.counts)
        .filter(([, count]) => count)
        .map(([name, count]) => el("span", { class: "badge", dataset: { item: name } }, `${name} ${count}`)),
    );
    $("#job-rate").textContent = job.calls_per_second === null ? "—" : `${job.calls_per_second}/s`;
    $("#job-eta").textContent = ACTIVE.has(job.state) && job.eta_seconds !== null ? formatDuration(job.eta_seconds) : "—";
    $("#job-mean").textContent = formatMs(job.mean_ms);
    show($("#job-figures"));
    const latency = job.latency_ms || {};
    drawHistogram($("#batch-histogram"), job.histogram, { p50: latency.p50, p95: latency.p95 });
    this.summary(job, latency);
    if (this.canView) {
      show($("#batch-details"));
      $("#job-csv").href = `${job.results_url}?format=csv&order=${this.order}`;
      $("#job-jsonl").href = `${job.results_url}?format=jsonl&order=${this.order}`;
    } else {
      show($("#job-results-note"));
    }
  }

  summary(job, latency) {
    const ended = !ACTIVE.has(job.state);
    show($("#batch-summary"), ended);
    if (!ended) return;
    const ok = Object.entries(job.by_status).reduce((sum, [status, count]) => sum + (Number(status) < 400 ? count : 0), 0);
    $("#sum-total").textContent = `${job.done} of ${job.total}`;
    $("#sum-ok").textContent = ok;
    $("#sum-failed").textContent = job.done - ok - job.counts.cancelled;
    $("#sum-p50").textContent = formatMs(latency.p50);
    $("#sum-p95").textContent = formatMs(latency.p95);
    $("#sum-max").textContent = formatMs(latency.max);
    $("#sum-elapsed").textContent = formatMs(job.elapsed_ms);
    $("#sum-link").href = job.exchanges_url;
  }

  async act(action, path, body) {
    const key = this.key;
    const buttons = Object.values(BUTTONS).map(([selector]) => $(selector));
    for (const button of buttons) button.disabled = true;
    try {
      const job = await postJSON(`${this.url}/${encodeURIComponent(key)}/${path}`, body || {});
      if (key !== this.key) return;
      const sent = action.startsWith("resend") ? `${job.resent} sent again. ` : "";
      this.message(`${sent}The job is ${job.state_label}.`);
      this.render(job);
      this.onChange?.();
      this.poll();
    } catch (error) {
      this.message(error.message);
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  }

  sort(name) {
    this.order = this.order === name ? `-${name}` : name;
    for (const button of $$("#batch-details button.sort")) {
      const mine = this.order.replace("-", "") === button.dataset.sort;
      if (mine) button.setAttribute("aria-sort", this.order.startsWith("-") ? "descending" : "ascending");
      else button.removeAttribute("aria-sort");
    }
    if (this.job) {
      $("#job-csv").href = `${this.job.results_url}?format=csv&order=${this.order}`;
      $("#job-jsonl").href = `${this.job.results_url}?format=jsonl&order=${this.order}`;
    }
    this.results(1);
  }

  async results(page) {
    const job = this.job;
    if (!job || !this.canView) return;
    this.resultsAt = Date.now();
    const params = new URLSearchParams({ order: this.order, page: Math.max(1, page), page_size: RESULTS_PAGE_SIZE });
    let data;
    try {
      data = await getJSON(`${job.results_url}?${params}`);
    } catch (error) {
      this.message(`Could not load the results: ${error.message}`);
      return;
    }
    if (job.key !== this.key) return;
    this.page = data.page;
    this.resultsDone = job.done;
    $("#batch-results").replaceChildren(...data.results.map((row) => this.row(row)));
    const failed = job.done - Object.entries(job.by_status).reduce((sum, [s, n]) => sum + (Number(s) < 400 ? n : 0), 0);
    $("#batch-results-count").textContent = `(${job.done} of ${job.total} done, ${failed} not OK)`;
    $("#results-prev").disabled = !data.has_previous;
    $("#results-next").disabled = !data.has_next;
    $("#results-page").textContent = `Page ${data.page}`;
  }

  row(item) {
    const link = item.exchange_url ? el("a", { href: item.exchange_url, target: "_blank", rel: "noopener" }, `#${item.exchange_id}`) : "—";
    const error = item.error_code ? `${item.error_code}${item.error ? `: ${item.error}` : ""}` : "";
    return el(
      "tr",
      { class: item.ok || !["answered", "failed", "unknown"].includes(item.state) ? "" : "failed", dataset: { index: item.index } },
      el("td", {}, item.index),
      el("td", { class: "path" }, `${item.method} ${item.path}`),
      el("td", {}, item.state),
      el("td", {}, el("span", { class: `badge ${statusClass(item.status)}` }, item.status ?? "—")),
      el("td", {}, formatMs(item.duration_ms)),
      el("td", {}, link),
      el("td", {}, error),
    );
  }
}
