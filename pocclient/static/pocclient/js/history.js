// History: the latest exchanges, paged and filtered by status class; a click loads one.
// Only made for a user with view_exchange (console.js); the page shows a note otherwise. It is
// the chosen connection's history; on a connection the user may not read, a note says so.

import { $, $$, el, formatMs, formatTime, show, statusClass } from "./dom.js";
import { getJSON } from "./http.js";

export class History {
  constructor(config, connections, { onLoad }) {
    this.url = config.urls.exchanges;
    this.connections = connections;
    this.onLoad = onLoad;
    this.page = 1;
    this.status = "";
    for (const button of $$("#history [data-status]")) {
      button.addEventListener("click", () => {
        this.status = button.dataset.status;
        for (const other of $$("#history [data-status]")) other.setAttribute("aria-pressed", String(other === button));
        this.page = 1;
        this.refresh();
      });
    }
    $("#history-refresh").addEventListener("click", () => this.refresh());
    $("#history-prev").addEventListener("click", () => this.go(this.page - 1));
    $("#history-next").addEventListener("click", () => this.go(this.page + 1));
    $("#history-rows").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-id]");
      if (row && !event.target.closest("a")) this.load(row.dataset.id);
    });
    connections.onChange(() => this.go(1));
    this.refresh();
  }

  go(page) {
    this.page = Math.max(1, page);
    this.refresh();
  }

  async refresh() {
    const connection = this.connections.name;
    const readable = this.connections.canRead;
    $("#history-connection-note").textContent = readable
      ? ""
      : `You may not read the history of the connection ${connection}; choose another to see its history.`;
    show($("#history-connection-note"), !readable);
    show($("#history-body"), readable);
    if (!readable) return;
    const params = new URLSearchParams({ page: this.page });
    if (this.status) params.set("status", this.status);
    let data;
    try {
      data = await getJSON(this.connections.url(this.url, params));
      if (connection !== this.connections.name) return; // another was chosen meanwhile
    } catch (error) {
      $("#history-empty").textContent = `Could not load the history: ${error.message}`;
      show($("#history-empty"));
      return;
    }
    $("#history-rows").replaceChildren(...data.results.map((row) => this.row(row)));
    $("#history-empty").textContent = this.emptyText();
    show($("#history-empty"), data.results.length === 0);
    $("#history-prev").disabled = !data.has_previous;
    $("#history-next").disabled = !data.has_next;
    $("#history-page").textContent = `Page ${data.page}`;
  }

  emptyText() {
    if (this.status) return "No exchanges match this filter.";
    if (this.page > 1) return "No older exchanges.";
    return this.connections.canSend ? "No exchanges yet: send a request above." : "No exchanges yet.";
  }

  row(exchange) {
    // No status: the error, or the state of a call in progress or never settled ("unknown").
    const outcome = exchange.status ?? exchange.error?.code ?? exchange.state ?? "—";
    return el(
      "tr",
      { dataset: { id: exchange.id }, title: "Load into the builder", class: "clickable" },
      el("td", { title: exchange.created_at }, formatTime(exchange.created_at)),
      el("td", { class: "actor", title: exchange.actor ? `Caused by ${exchange.actor}` : "Caused by Python code" }, exchange.actor || "—"),
      el("td", {}, exchange.method),
      el("td", { class: "path" }, exchange.path),
      el("td", {}, el("span", { class: `badge ${statusClass(exchange.status)}` }, outcome)),
      el("td", {}, formatMs(exchange.duration_ms)),
      el(
        "td",
        { class: "row-actions" },
        el("button", { type: "button", class: "small replay" }, "Load"),
        " ",
        el("a", { href: exchange.admin_url, target: "_blank", rel: "noopener" }, "admin"),
      ),
    );
  }

  async load(id) {
    try {
      this.onLoad(await getJSON(`${this.url}/${id}`));
    } catch (error) {
      $("#history-empty").textContent = `Could not load exchange #${id}: ${error.message}`;
      show($("#history-empty"));
    }
  }
}
