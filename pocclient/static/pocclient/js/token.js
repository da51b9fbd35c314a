// The token panel: state, countdown, last refresh and error; refreshes by itself when due.
// The browser only ever sees the token's status, never the token. The token is the chosen
// connection's: choosing another shows that one's.

import { $, formatDuration, formatTime } from "./dom.js";
import { ApiError, getJSON, postJSON } from "./http.js";

const MARGIN_SECONDS = 1; // ask a little after the refresh is due, so the server agrees
const RETRY_SECONDS = [15, 30, 60, 120, 300];

export class TokenPanel {
  constructor(config, connections) {
    this.urls = config.urls;
    this.connections = connections;
    this.status = null;
    this.receivedAt = 0;
    this.timer = null;
    this.failures = 0;
    this.busy = false;
    $("#token-refresh").disabled = !this.canForce;
    $("#token-refresh").addEventListener("click", () => this.refresh({ force: true }));
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.sync();
    });
    setInterval(() => this.render(), 1000);
    connections.onChange(() => this.switched());
    // config.token is the status of the page's own connection; a reload may have chosen another.
    if (connections.name === (config.connection ?? "default")) this.update(config.token);
    else this.switched();
  }

  // A refresh when due takes either permission; one by hand (force) takes send_request.
  get canForce() {
    return this.connections.canSend;
  }

  get canRead() {
    return this.connections.canRead;
  }

  switched() {
    clearTimeout(this.timer);
    this.failures = 0;
    this.status = null;
    this.render();
    this.message("");
    $("#token-refresh").disabled = this.busy || !this.canForce;
    this.sync();
  }

  // Seconds from now, from the server's own numbers: no trust in the browser's clock.
  secondsLeft() {
    if (!this.status || this.status.expires_in === null) return null;
    return this.status.expires_in - (performance.now() - this.receivedAt) / 1000;
  }

  secondsToRefresh() {
    const left = this.secondsLeft();
    const { expires_at: expires, refresh_due_at: due } = this.status || {};
    if (left === null || !expires || !due) return null;
    return left - (Date.parse(expires) - Date.parse(due)) / 1000;
  }

  shownState() {
    const state = this.status?.state || "missing";
    const left = this.secondsLeft();
    if (state === "valid" || state === "expiring") {
      const due = this.secondsToRefresh();
      if (left !== null && left <= 0) return "expired";
      if (due !== null && due <= 0) return "expiring";
    }
    return state;
  }

  update(status) {
    this.status = status;
    this.receivedAt = performance.now();
    this.render();
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    let wait;
    if (this.failures > 0) {
      wait = RETRY_SECONDS[Math.min(this.failures, RETRY_SECONDS.length) - 1];
    } else {
      const due = this.secondsToRefresh();
      wait = due === null ? 0 : Math.max(0, due) + MARGIN_SECONDS;
    }
    // setTimeout's limit is about 24 days; a token that lives longer is checked daily.
    this.timer = setTimeout(() => this.refresh({ force: false }), Math.min(wait, 86400) * 1000);
  }

  async refresh({ force }) {
    if (this.busy || (force && !this.canForce)) return;
    this.busy = true;
    const button = $("#token-refresh");
    button.disabled = true;
    this.message(force ? "Refreshing…" : "Refreshing before expiry…");
    const connection = this.connections.name;
    try {
      const status = await postJSON(this.urls.token_refresh, { ...this.connections.body(), force });
      if (connection !== this.connections.name) return; // another was chosen meanwhile
      this.failures = 0;
      this.update(status);
      this.message(status.refreshed ? `New token at ${new Date().toLocaleTimeString()}.` : "The token is still good.");
    } catch (error) {
      if (connection !== this.connections.name) return;
      this.failures += 1;
      if (error instanceof ApiError && error.payload.state) this.update(error.payload);
      else this.schedule();
      this.message(`Refresh failed: ${error.message}`);
    } finally {
      this.busy = false;
      button.disabled = !this.canForce;
      // A refresh of the connection chosen before: the one chosen now may have wanted one too.
      if (connection !== this.connections.name) this.schedule();
    }
  }

  async sync() {
    const connection = this.connections.name;
    try {
      // Reading the status takes view_exchange; without it, a refresh when due answers it.
      const status = this.canRead
        ? await getJSON(this.connections.url(this.urls.token))
        : await postJSON(this.urls.token_refresh, { ...this.connections.body(), force: false });
      if (connection === this.connections.name) this.update(status);
    } catch {
      // The next scheduled refresh reports what is wrong (a connection just chosen has none
      // scheduled yet: ask for one now).
      if (connection === this.connections.name && this.status === null) this.schedule();
    }
  }

  message(text) {
    $("#token-message").textContent = text;
  }

  render() {
    const status = this.status || {};
    const state = this.shownState();
    const badge = $("#token-state");
    badge.dataset.state = state;
    badge.textContent = state;
    const left = this.secondsLeft();
    $("#token-countdown").textContent = left === null ? "—" : left > 0 ? formatDuration(left) : "expired";
    $("#token-expires").textContent = formatTime(status.expires_at);
    $("#token-obtained").textContent = formatTime(status.obtained_at);
    const due = this.secondsToRefresh();
    $("#token-next").textContent = due === null ? "—" : due > 0 ? `in ${formatDuration(due)}` : "now";
    $("#token-refresh-count").textContent = status.refresh_count ?? "—";
    $("#token-error").textContent = status.last_error
      ? `${status.last_error} (${formatTime(status.last_error_at)})`
      : "—";
  }
}
