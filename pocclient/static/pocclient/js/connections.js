// The connection picker: which API connection (name, base URL, colour, protected, what the
// user may do on it) the console's requests go to. The choice is kept in localStorage, so a
// reload keeps it; one no longer offered falls back to the page's own (config.connection).
// Other modules read `current`, add `url()`/`body()` to what they send, and listen with
// `onChange`; this module labels and colours the controls marked data-connection-action.

import { $, $$, el, show } from "./dom.js";

const STORAGE_KEY = "pocclient.connection";
const DEFAULT = "default";
// A colour as the backend stores it: "#rgb" or "#rrggbb" (anything else is not shown).
const COLOUR = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;
const LABELS = {
  send: (name) => `Send to ${name}`,
  sending: (name) => `Sending to ${name}…`,
  batch: (name) => `Run batch on ${name}`,
};

function stored() {
  try {
    return window.localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage switched off: the choice lasts as long as the page
  }
}

function store(name) {
  try {
    window.localStorage.setItem(STORAGE_KEY, name);
  } catch {
    // as above
  }
}

export class Connections {
  constructor(config) {
    const permissions = config.permissions;
    // A server that lists no connections has one, the environment's ("default"), and knows
    // nothing of the choice: requests then leave the connection out (which means "default").
    this.listed = Array.isArray(config.connections) && config.connections.length > 0;
    const offered = this.listed
      ? config.connections
      : [{ name: DEFAULT, base_url: config.base_url, colour: "", protected: false, can_send: true, can_read: true }];
    // What the user may do on a connection is also bounded by the console's own permissions.
    this.list = offered.map((connection) => ({
      ...connection,
      base_url: connection.base_url || config.base_url,
      colour: COLOUR.test(connection.colour || "") ? connection.colour : "",
      can_send: Boolean(permissions.send_request && (connection.can_send ?? true)),
      can_read: Boolean(permissions.view_exchange && (connection.can_read ?? true)),
    }));
    this.permitted = Boolean(permissions.send_request);
    this.listeners = [];
    this.picker = $("#connection-picker");
    this.picker.replaceChildren(
      ...this.list.map((connection) =>
        el("option", { value: connection.name }, connection.protected ? `${connection.name} (protected)` : connection.name),
      ),
    );
    show($("#connection-choice"), this.list.length > 1);
    for (const control of $$("[data-connection-action]")) control.dataset.serverTitle = control.title;
    const wanted = [stored(), config.connection, DEFAULT].find((name) => this.find(name));
    this.current = this.find(wanted) || this.list[0];
    this.render();
    this.picker.addEventListener("change", () => this.select(this.picker.value));
  }

  find(name) {
    return this.list.find((connection) => connection.name === name) || null;
  }

  get name() {
    return this.current.name;
  }

  get canSend() {
    return this.current.can_send;
  }

  get canRead() {
    return this.current.can_read;
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  select(name) {
    const connection = this.find(name);
    if (!connection || connection === this.current) return;
    this.current = connection;
    store(name);
    this.render();
    for (const listener of this.listeners) listener(connection);
  }

  // A URL with the query's parameters and ?connection= added.
  url(url, params = new URLSearchParams()) {
    if (this.listed) params.set("connection", this.name);
    const query = params.toString();
    return query ? `${url}${url.includes("?") ? "&" : "?"}${query}` : url;
  }

  // What a JSON body (or a job's options) gains: {connection: name}.
  body() {
    return this.listed ? { connection: this.name } : {};
  }

  label(kind) {
    return LABELS[kind](this.name);
  }

  render() {
    const { name, colour, base_url: baseUrl } = this.current;
    this.picker.value = name;
    const badge = $("#connection-badge");
    badge.dataset.connection = name;
    badge.dataset.protected = String(Boolean(this.current.protected));
    badge.title = this.current.protected
      ? `Connection ${name} (protected: a batch asks first)`
      : `Connection ${name}`;
    $("#connection-name").textContent = name;
    for (const node of $$("[data-connection-name]")) node.textContent = name;
    // The colour is a custom property on the page (CSSOM, which the CSP allows): the badge
    // and every control that sends use it (console.css).
    const root = document.documentElement;
    if (colour) root.style.setProperty("--connection-colour", colour);
    else root.style.removeProperty("--connection-colour");
    root.dataset.connectionColoured = String(Boolean(colour));
    for (const node of $$("[data-base-url]")) node.textContent = baseUrl || "";
    for (const control of $$("[data-connection-action]")) {
      const kind = control.dataset.connectionAction;
      control.dataset.connection = name;
      control.textContent = this.label(kind);
      control.disabled = !this.canSend;
      // Without send_request at all, the server's title says why (read-only page).
      control.title = this.canSend || !this.permitted
        ? control.dataset.serverTitle
        : `You may not send to the connection ${name}.`;
    }
  }
}

// Before a batch on a protected connection: a dialog naming the connection and what would be
// sent. Resolves true to go on; Cancel, Escape or closing it resolves false (nothing is sent).
// ``what`` says what would be sent ("50 requests", "a request for each row of data.csv").
export function confirmBatch(connection, what) {
  const dialog = $("#connection-confirm");
  $("#connection-confirm-name").textContent = connection.name;
  $("#connection-confirm-what").textContent = what;
  $("#connection-confirm-run").textContent = `Run on ${connection.name}`;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "run"), { once: true });
    dialog.showModal();
  });
}
