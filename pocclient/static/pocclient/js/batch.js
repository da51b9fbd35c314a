// The batch runner: many requests at a chosen concurrency, made into a job (POST /api/jobs)
// that the server's workers run; the job view (job.js) then follows its progress. The job goes
// to the chosen connection; on a protected one the page asks first.

import { confirmBatch } from "./connections.js";
import { $, flattenErrors, setList, show } from "./dom.js";
import { ApiError, postJSON, postRaw } from "./http.js";

export class BatchRunner {
  constructor(config, builder, connections, { onStarted }) {
    this.config = config;
    this.builder = builder;
    this.connections = connections;
    this.onStarted = onStarted;
    connections.onChange(() => this.bounds());
    this.bounds();
    $("#batch-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    for (const radio of document.querySelectorAll("input[name=batch-source]")) {
      radio.addEventListener("change", () => {
        show($("#batch-jsonl"), this.source() === "jsonl");
        show($("#batch-data-row"), this.source() === "data");
      });
    }
  }

  // A connection may have its own limits (max_workers, batch_max); the page's are default's.
  limits() {
    const { max_workers: workers, batch_max: most } = this.connections.current;
    return { maxWorkers: workers ?? this.config.max_workers, batchMax: most ?? this.config.batch_max };
  }

  bounds() {
    const { maxWorkers, batchMax } = this.limits();
    $("#batch-concurrency").max = maxWorkers;
    $("#batch-concurrency-range").textContent = `(1 to ${maxWorkers})`;
    $("#batch-count").max = batchMax;
  }

  source() {
    return document.querySelector("input[name=batch-source]:checked").value;
  }

  // The job's options; without a name, one that says what it sends (the job list shows it).
  options(problems, fallback) {
    const concurrency = Number($("#batch-concurrency").value);
    const { maxWorkers } = this.limits();
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > maxWorkers) {
      problems.push(`Concurrency must be between 1 and ${maxWorkers}.`);
    }
    const name = ($("#batch-name").value.trim() || fallback).slice(0, 200);
    return { concurrency, ...(name ? { name } : {}), ...this.connections.body() };
  }

  // A function that makes the job, what it sends (for the protected connection's question),
  // or the problems that keep it from being made.
  plan() {
    const problems = [];
    const url = this.config.urls.jobs;
    const source = this.source();
    if (source === "jsonl") {
      const text = $("#batch-jsonl").value;
      const lines = text.split("\n").filter((line) => line.trim()).length;
      const options = this.options(problems, `${lines} request${lines === 1 ? "" : "s"} from a list`);
      if (!text.trim()) problems.push("Paste at least one request, one JSON object per line.");
      // JSON Lines as they are: the server reads them as a stream and names bad lines.
      const query = new URLSearchParams(Object.entries(options).map(([k, v]) => [k, String(v)]));
      return {
        problems,
        what: `${lines} request${lines === 1 ? "" : "s"} from the list`,
        make: () => postRaw(`${url}?${query}`, text, { contentType: "application/x-ndjson" }),
      };
    }
    const { request, problems: built } = this.builder.current();
    problems.push(...built);
    if (source === "data") {
      const options = this.options(problems, ""); // the server names it after the file
      const file = $("#batch-data").files[0];
      if (!file) problems.push("Choose a data file: CSV with a header row, or JSON Lines.");
      const form = new FormData();
      form.append("template", JSON.stringify(request));
      if (file) form.append("data", file);
      for (const [name, value] of Object.entries(options)) form.append(name, String(value));
      const what = `a request for each row of ${file?.name || "the data file"}`;
      return { problems, what, make: () => postRaw(url, form) };
    }
    const count = Number($("#batch-count").value);
    const options = this.options(problems, `${request.method} ${request.path} × ${count}`);
    const { batchMax } = this.limits();
    if (!Number.isInteger(count) || count < 1 || count > batchMax) {
      problems.push(`Repeat the request 1 to ${batchMax} times.`);
    }
    const requests = Array.from({ length: count }, () => request);
    const what = `${count} request${count === 1 ? "" : "s"} (${request.method} ${request.path})`;
    return { problems, what, make: () => postJSON(url, { ...options, requests }) };
  }

  async run() {
    if (!this.connections.canSend) return; // the server would refuse it too (403)
    const connection = this.connections.current;
    const { problems, what, make } = this.plan();
    setList($("#batch-errors"), problems);
    if (problems.length) return;
    $("#batch-run").disabled = true;
    if (connection.protected && !(await confirmBatch(connection, what))) {
      $("#batch-run").disabled = !this.connections.canSend;
      setList($("#batch-errors"), [`Not run: nothing was sent to ${connection.name}.`]);
      return;
    }
    try {
      this.onStarted(await make());
    } catch (error) {
      const messages = error instanceof ApiError && error.errors ? flattenErrors(error.errors) : [error.message];
      setList($("#batch-errors"), [...messages, "Nothing was sent."]);
    } finally {
      $("#batch-run").disabled = !this.connections.canSend;
    }
  }
}
