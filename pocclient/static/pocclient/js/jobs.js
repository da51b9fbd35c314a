// The job list: the latest jobs, newest first, with their state and progress; a click opens
// one in the batch panel. While a listed job has not ended, the list refreshes itself. It lists
// the chosen connection's jobs.

import { $, $$, el, formatTime, show } from "./dom.js";
import { getJSON } from "./http.js";

const ACTIVE = new Set(["planning", "running", "paused"]);
const REFRESH_MS = 3000;

export class JobList {
  constructor(config, connections, { onOpen }) {
    this.url = config.urls.jobs;
    this.connections = connections;
    this.onOpen = onOpen;
    this.page = 1;
    this.state = "";
    this.current = null;
    this.timer = null;
    for (const button of $$("#jobs [data-job-state]")) {
      button.addEventListener("click", () => {
        this.state = button.dataset.jobState;
        for (const other of $$("#jobs [data-job-state]")) other.setAttribute("aria-pressed", String(other === button));
        this.page = 1;
        this.refresh();
      });
    }
    $("#jobs-refresh").addEventListener("click", () => this.refresh());
    $("#jobs-prev").addEventListener("click", () => this.go(this.page - 1));
    $("#jobs-next").addEventListener("click", () => this.go(this.page + 1));
    $("#jobs-rows").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-key]");
      if (row) this.onOpen(row.dataset.key);
    });
    connections.onChange(() => this.go(1));
    this.refresh();
  }

  go(page) {
    this.page = Math.max(1, page);
    this.refresh();
  }

  highlight(key) {
    this.current = key;
    for (const row of $$("#jobs-rows tr[data-key]")) row.setAttribute("aria-current", String(row.dataset.key === key));
  }

  async refresh() {
    clearTimeout(this.timer);
    const params = new URLSearchParams({ page: this.page });
    if (this.state) params.set("state", this.state);
    const connection = this.connections.name;
    if (!this.connections.canRead) {
      // The server would refuse the list (403): say so instead of asking.
      $("#jobs-rows").replaceChildren();
      $("#jobs-empty").textContent = `Listing the jobs on ${connection} needs the right to read its log; a job you start still shows above.`;
      show($("#jobs-empty"));
      $("#jobs-prev").disabled = $("#jobs-next").disabled = true;
      return;
    }
    let data;
    try {
      data = await getJSON(this.connections.url(this.url, params));
      if (connection !== this.connections.name) return; // another was chosen meanwhile
    } catch (error) {
      $("#jobs-empty").textContent = `Could not load the jobs: ${error.message}`;
      show($("#jobs-empty"));
      this.timer = setTimeout(() => this.refresh(), REFRESH_MS * 2);
      return;
    }
    $("#jobs-rows").replaceChildren(...data.results.map((job) => this.row(job)));
    this.highlight(this.current);
    $("#jobs-empty").textContent = this.state ? "No jobs match this filter." : this.page > 1 ? "No older jobs." : "No jobs yet: run a batch above.";
    show($("#jobs-empty"), data.results.length === 0);
    $("#jobs-prev").disabled = !data.has_previous;
    $("#jobs-next").disabled = !data.has_next;
    $("#jobs-page").textContent = `Page ${data.page}`;
    if (data.results.some((job) => ACTIVE.has(job.state))) this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  row(job) {
    const percent = job.total ? Math.floor((job.done / job.total) * 100) : 0;
    const bar = el("div", { class: "bar" });
    bar.style.width = `${percent}%`;
    // Red when calls failed or were left unknown; otherwise neutral, never green: the list's
    // counts are by state only (cheap), so a job's error statuses show in its own view.
    const troubled = job.counts.failed + job.counts.unknown;
    return el(
      "tr",
      { dataset: { key: job.key, state: job.state }, class: "clickable", title: "Show its progress and results" },
      el("td", { title: job.created_at }, formatTime(job.created_at)),
      el("td", { class: "actor" }, job.created_by || "—"),
      el("td", { class: "name" }, job.name || job.key.slice(0, 8)),
      el("td", {}, el("span", { class: "badge", dataset: { state: job.state } }, job.state_label)),
      el(
        "td",
        { class: "job-progress" },
        el("div", { class: "progress mini", dataset: { failing: String(troubled > 0) } }, bar),
        el("span", { class: "muted small" }, `${job.done} / ${job.total}`),
      ),
      el("td", { class: "row-actions" }, el("button", { type: "button", class: "small open" }, "Open")),
    );
  }
}
