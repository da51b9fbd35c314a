// Small DOM and formatting helpers shared by the console's modules.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// el("a", {href: "/x", class: "y"}, "text", child): text is always set as text, never as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function show(node, visible = true) {
  node.hidden = !visible;
}

export function setList(list, messages) {
  list.replaceChildren(...messages.map((message) => el("li", {}, message)));
  show(list, messages.length > 0);
}

// {"field": ["message"]} -> ["field: message"], "__all__" without a prefix.
export function flattenErrors(errors) {
  const lines = [];
  for (const [field, messages] of Object.entries(errors || {})) {
    for (const message of messages) lines.push(field === "__all__" ? message : `${field}: ${message}`);
  }
  return lines;
}

export function statusClass(status) {
  if (status === null || status === undefined) return "err";
  return `s${String(status)[0]}`;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

export function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m}:${rest}`;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
}

export function prettyJSON(value) {
  return JSON.stringify(value, null, 2);
}

// Tabs: buttons with data-tab inside [data-tabs], panels with data-panel in the same parent.
export function setupTabs(container) {
  const buttons = $$("[data-tab]", container);
  const panels = $$(":scope > [data-panel]", container.parentElement);
  const select = (name) => {
    for (const button of buttons) button.setAttribute("aria-selected", String(button.dataset.tab === name));
    for (const panel of panels) panel.hidden = panel.dataset.panel !== name;
  };
  for (const button of buttons) button.addEventListener("click", () => select(button.dataset.tab));
  return select;
}
