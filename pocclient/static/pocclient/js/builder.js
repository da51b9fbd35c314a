// The request builder and the response panel.

import { curlCommand } from "./curl.js";
import { $, el, flattenErrors, formatBytes, formatMs, prettyJSON, setList, setupTabs, show, statusClass } from "./dom.js";
import { ApiError, postJSON } from "./http.js";
import { KeyValueEditor, pairsToQuery } from "./kv.js";

const MAX_SHOWN_CHARS = 200_000; // a huge body is cut in the page (the admin has it all)

export class Builder {
  constructor(config, connections, { onSent }) {
    this.config = config;
    this.connections = connections;
    this.onSent = onSent;
    this.bodyless = new Set(config.bodyless_methods);
    this.form = $("#request-form");
    this.method = $("#method");
    this.path = $("#path");
    this.body = $("#body");
    this.selectBuilderTab = setupTabs($("[data-tabs=builder]"));
    setupTabs($("[data-tabs=response]"));
    const changed = () => this.changed();
    this.query = new KeyValueEditor($("#query-rows"), { kind: "parameter", onChange: changed });
    this.headers = new KeyValueEditor($("#header-rows"), { kind: "header", onChange: changed });
    for (const button of document.querySelectorAll("[data-add]")) {
      const editor = button.dataset.add === "query-rows" ? this.query : this.headers;
      button.addEventListener("click", () => editor.addRow("", "", { focus: true }));
    }
    this.method.addEventListener("change", changed);
    this.path.addEventListener("input", changed);
    this.body.addEventListener("input", changed);
    $("#body-format").addEventListener("click", () => this.formatBody());
    $("#copy-curl").addEventListener("click", () => this.copyCurl());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.form.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.send();
      }
    });
    this.changed();
  }

  // The request as POST /api/send takes it, and what is wrong with it (checked in the page
  // first, for a quick answer; the server checks everything again).
  current() {
    const problems = [];
    const request = { method: this.method.value, path: this.path.value.trim() };
    const query = this.query.pairs();
    if (query.length) request.query = pairsToQuery(query);
    const headers = this.headers.pairs();
    if (headers.length) {
      request.headers = {};
      for (const [name, value] of headers) {
        if (name.toLowerCase() === "authorization") {
          problems.push("headers: Authorization is managed by pocclient: it sends the current token.");
        } else if (name.toLowerCase() in lowerKeys(request.headers)) {
          problems.push(`headers: ${name} is given twice.`);
        } else {
          request.headers[name] = value;
        }
      }
    }
    const text = this.body.value.trim();
    if (text) {
      try {
        request.json = JSON.parse(text);
      } catch (error) {
        problems.push(`json: the body is not valid JSON (${error.message}).`);
      }
      if (this.bodyless.has(request.method)) problems.push(`json: a ${request.method} request cannot have a body.`);
    }
    return { request, problems };
  }

  changed() {
    const { request, problems } = this.current();
    const text = this.body.value.trim();
    const bodyProblem = problems.find((problem) => problem.startsWith("json:"));
    const status = $("#body-status");
    status.textContent = !text ? "No body." : bodyProblem ? bodyProblem.slice(6) : "Valid JSON.";
    status.classList.toggle("bad", Boolean(bodyProblem));
    this.body.classList.toggle("bad", Boolean(bodyProblem));
    $("#query-count").textContent = this.query.pairs().length || "";
    $("#headers-count").textContent = this.headers.pairs().length || "";
    $("#body-flag").textContent = text ? (bodyProblem ? "!" : "•") : "";
    $("#curl").textContent = curlCommand({ baseUrl: this.connections.current.base_url, ...request });
  }

  formatBody() {
    try {
      this.body.value = prettyJSON(JSON.parse(this.body.value));
      this.changed();
    } catch {
      this.selectBuilderTab("body");
    }
  }

  async copyCurl() {
    const text = $("#curl").textContent;
    const button = $("#copy-curl");
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      window.getSelection().selectAllChildren($("#curl"));
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => {
      button.textContent = "Copy as cURL";
    }, 2000);
  }

  errors(messages) {
    setList($("#builder-errors"), messages);
  }

  async send() {
    if (!this.connections.canSend) return; // the server would refuse it too (403)
    const { request, problems } = this.current();
    this.errors(problems);
    if (problems.length) {
      if (problems.some((problem) => problem.startsWith("json:"))) this.selectBuilderTab("body");
      return;
    }
    const button = $("#send");
    button.disabled = true;
    button.textContent = this.connections.label("sending");
    try {
      this.showResponse(await postJSON(this.config.urls.send, { ...request, ...this.connections.body() }));
    } catch (error) {
      if (error instanceof ApiError && error.errors) this.errors(flattenErrors(error.errors));
      else this.showFailure(error);
    } finally {
      button.disabled = !this.connections.canSend;
      button.textContent = this.connections.label("send");
      this.onSent();
    }
  }

  // Fill the builder from a replay ({method, path, query, headers, json, warnings}).
  load(replay, exchangeId) {
    this.method.value = replay.method;
    this.path.value = replay.path;
    this.query.load(replay.query);
    this.headers.load(replay.headers);
    this.body.value = replay.json === null || replay.json === undefined ? "" : prettyJSON(replay.json);
    const note = $("#replay-note");
    note.replaceChildren(
      el("strong", {}, `Loaded exchange #${exchangeId}.`),
      this.connections.canSend
        ? " Press Send to replay it."
        : this.config.permissions.send_request
          ? ` Copy it as cURL; you may not send to the connection ${this.connections.name}.`
          : " Copy it as cURL; sending it needs api_client.send_request.",
      ...replay.warnings.map((warning) => el("span", { class: "warning" }, ` ${warning}`)),
    );
    show(note);
    this.errors([]);
    this.changed();
    this.selectBuilderTab(replay.json !== null && replay.json !== undefined ? "body" : "query");
    this.path.focus();
  }

  clearResponse() {
    show($("#response-empty"), false);
    show($("#response-error"), false);
    show($("#response-source"), false);
  }

  showResponse(payload) {
    this.clearResponse();
    show($("#replay-note"), false);
    this.statusLine({
      status: payload.status,
      duration_ms: payload.duration_ms,
      attempts: payload.attempts,
      size: payload.size,
      id: payload.id,
      admin_url: payload.admin_url,
    });
    this.showBody(payload.body_is_json ? prettyJSON(payload.body) : payload.body ?? "");
    this.showHeaders(payload.headers);
  }

  // A recorded exchange, from history: what the log holds (redacted, perhaps truncated).
  showRecorded(detail) {
    this.clearResponse();
    this.statusLine({ ...detail, size: null });
    const source = $("#response-source");
    source.textContent = `Recorded ${new Date(detail.created_at).toLocaleString()}, as stored in the exchange log${detail.response_truncated ? " (body truncated)" : ""}.`;
    show(source);
    let body = detail.response_body;
    try {
      body = prettyJSON(JSON.parse(body));
    } catch {
      // not JSON: shown as it is
    }
    this.showBody(body);
    this.showHeaders(detail.response_headers);
    if (detail.error) this.showError(detail.error.message, detail.admin_url);
  }

  statusLine({ status, duration_ms, attempts, size, id, admin_url }) {
    show($("#response-line"));
    const badge = $("#response-status");
    badge.textContent = status ?? "no response";
    badge.className = `badge ${statusClass(status)}`;
    $("#response-duration").textContent = formatMs(duration_ms);
    $("#response-attempts").textContent = attempts > 1 ? `${attempts} attempts` : "1 attempt";
    $("#response-size").textContent = size === null || size === undefined ? "" : formatBytes(size);
    const link = $("#response-admin");
    show(link, Boolean(admin_url));
    if (admin_url) {
      link.href = admin_url;
      link.textContent = `exchange #${id}`;
    }
  }

  showBody(text) {
    const body = $("#response-body");
    body.textContent = text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS)}\n… (cut: the whole body is in the admin)` : text;
  }

  showHeaders(headers) {
    $("#response-headers").replaceChildren(
      ...Object.entries(headers || {}).map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", {}, value))),
    );
  }

  showError(message, adminUrl) {
    const box = $("#response-error");
    box.replaceChildren(message);
    if (adminUrl) box.append(" ", el("a", { href: adminUrl, target: "_blank", rel: "noopener" }, "See the exchange."));
    show(box);
  }

  // The API could not be reached, or no token could be had: there is no response to show.
  showFailure(error) {
    this.clearResponse();
    show($("#response-line"), false);
    this.showBody("");
    this.showHeaders({});
    const payload = error instanceof ApiError ? error.payload : {};
    this.showError(error.message, payload.admin_url);
  }
}

function lowerKeys(mapping) {
  return Object.fromEntries(Object.keys(mapping).map((key) => [key.toLowerCase(), true]));
}
