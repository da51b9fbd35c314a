// The batch runner: many requests at a chosen concurrency, with live progress and a summary.

import { $, el, flattenErrors, formatMs, setList, show, statusClass } from "./dom.js";
import { drawHistogram } from "./histogram.js";
import { ApiError, postNDJSON } from "./http.js";

export class BatchRunner {
  constructor(config, builder, { onDone }) {
    this.config = config;
    this.builder = builder;
    this.onDone = onDone;
    this.canSend = config.permissions.send_request;
    this.controller = null;
    this.lines = []; // request index -> line number of the pasted list (for messages)
    $("#batch-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    $("#batch-stop").addEventListener("click", () => this.controller?.abort());
    for (const radio of document.querySelectorAll("input[name=batch-source]")) {
      radio.addEventListener("change", () => show($("#batch-jsonl"), this.source() === "jsonl"));
    }
  }

  source() {
    return document.querySelector("input[name=batch-source]:checked").value;
  }

  // {requests, problems}: the list to send, or why it cannot be sent.
  requests() {
    if (this.source() === "repeat") {
      const count = Number($("#batch-count").value);
      if (!Number.isInteger(count) || count < 1 || count > this.config.batch_max) {
        return { problems: [`Repeat the request 1 to ${this.config.batch_max} times.`] };
      }
      const { request, problems } = this.builder.current();
      this.lines = [];
      return { requests: Array.from({ length: count }, () => request), problems };
    }
    const requests = [];
    const problems = [];
    this.lines = [];
    $("#batch-jsonl").value.split("\n").forEach((text, index) => {
      if (!text.trim()) return;
      try {
        requests.push(JSON.parse(text));
        this.lines.push(index + 1);
      } catch (error) {
        problems.push(`Line ${index + 1} is not valid JSON: ${error.message}`);
      }
    });
    if (!requests.length && !problems.length) problems.push("Paste at least one request, one JSON object per line.");
    if (requests.length > this.config.batch_max) problems.push(`At most ${this.config.batch_max} requests per batch.`);
    return { requests, problems };
  }

  // "requests[3].path: ..." -> "line 7, path: ..." when the list was pasted.
  where(message) {
    return message.replace(/requests\[(\d+)\]\.?/g, (match, index) => {
      const line = this.lines[Number(index)];
      return line ? `line ${line}, ` : match;
    });
  }

  async run() {
    if (!this.canSend) return; // the server would refuse it too (403)
    const { requests, problems } = this.requests();
    const concurrency = Number($("#batch-concurrency").value);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > this.config.max_workers) {
      problems.push(`Concurrency must be between 1 and ${this.config.max_workers}.`);
    }
    setList($("#batch-errors"), problems);
    if (problems.length) return;

    this.start(requests.length);
    this.controller = new AbortController();
    let summary = null;
    try {
      await postNDJSON(
        this.config.urls.batch,
        { requests, concurrency },
        (line) => {
          if (line.summary) summary = line.summary;
          else this.item(line);
        },
        { signal: this.controller.signal },
      );
      if (summary) this.finish(summary);
      else $("#batch-progress-text").textContent += " — the answer ended early.";
    } catch (error) {
      if (error.name === "AbortError") {
        $("#batch-progress-text").textContent = `Stopped after ${this.done} of ${this.total}; no new calls were started.`;
      } else if (error instanceof ApiError && error.errors) {
        setList($("#batch-errors"), flattenErrors(error.errors).map((message) => this.where(message)));
        $("#batch-progress-text").textContent = "Nothing was sent.";
      } else {
        setList($("#batch-errors"), [error.message]);
      }
    } finally {
      this.controller = null;
      $("#batch-run").disabled = !this.canSend;
      $("#batch-stop").disabled = true;
      this.onDone();
    }
  }

  start(total) {
    this.total = total;
    this.done = 0;
    this.counts = new Map();
    $("#batch-run").disabled = true;
    $("#batch-stop").disabled = false;
    show($("#batch-summary"), false);
    $("#batch-results").replaceChildren();
    $("#batch-results-count").textContent = "";
    $("#batch-counts").replaceChildren();
    const progress = $("#batch-progress");
    progress.setAttribute("aria-valuemax", total);
    this.progress(0);
  }

  progress(done) {
    const progress = $("#batch-progress");
    progress.setAttribute("aria-valuenow", done);
    const percent = this.total ? Math.floor((done / this.total) * 100) : 0;
    $(".bar", progress).style.width = `${percent}%`;
    progress.dataset.percent = percent;
    $("#batch-progress-text").textContent = `${done} / ${this.total} (${percent}%)`;
  }

  item(line) {
    this.done += 1;
    this.progress(this.done);
    const key = line.status ?? line.error?.code ?? "error";
    this.counts.set(key, (this.counts.get(key) || 0) + 1);
    $("#batch-counts").replaceChildren(
      ...[...this.counts.entries()]
        .sort(([a], [b]) => String(a).localeCompare(String(b)))
        .map(([status, count]) => el("span", { class: `badge ${statusClass(typeof status === "number" ? status : null)}` }, `${status} × ${count}`)),
    );
    const link = line.exchange_id
      ? el("a", { href: this.config.urls.exchange_admin.replace("{id}", line.exchange_id), target: "_blank", rel: "noopener" }, `#${line.exchange_id}`)
      : "—";
    const where = this.lines[line.index] ? ` (line ${this.lines[line.index]})` : "";
    $("#batch-results").append(
      el(
        "tr",
        { class: line.ok ? "" : "failed" },
        el("td", {}, `${line.index}${where}`),
        el("td", {}, el("span", { class: `badge ${statusClass(line.status)}` }, line.status ?? "—")),
        el("td", {}, formatMs(line.duration_ms)),
        el("td", {}, link),
        el("td", {}, line.error ? `${line.error.code}: ${line.error.message}` : ""),
      ),
    );
  }

  finish(summary) {
    const latency = summary.latency_ms || {};
    $("#sum-total").textContent = `${summary.done} of ${summary.total}`;
    $("#sum-ok").textContent = summary.ok;
    $("#sum-failed").textContent = summary.failed;
    $("#sum-p50").textContent = formatMs(latency.p50);
    $("#sum-p95").textContent = formatMs(latency.p95);
    $("#sum-max").textContent = formatMs(latency.max);
    $("#sum-elapsed").textContent = formatMs(summary.elapsed_ms);
    $("#sum-link").href = summary.exchanges_url;
    $("#batch-results-count").textContent = `(${summary.done}, ${summary.failed} failed)`;
    show($("#batch-summary"));
    drawHistogram($("#batch-histogram"), summary.histogram, { p50: latency.p50, p95: latency.p95 });
    if (summary.aborted) setList($("#batch-errors"), [summary.aborted]);
  }
}
