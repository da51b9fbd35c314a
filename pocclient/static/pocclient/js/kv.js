// A list of name/value rows with add and remove, for query parameters and headers.

import { el } from "./dom.js";

export class KeyValueEditor {
  constructor(container, { kind, onChange }) {
    this.container = container;
    this.kind = kind;
    this.onChange = onChange;
    container.addEventListener("input", () => this.onChange());
  }

  addRow(name = "", value = "", { focus = false } = {}) {
    const nameInput = el("input", { type: "text", class: "kv-name", placeholder: "name", "aria-label": `${this.kind} name`, spellcheck: "false", autocomplete: "off" });
    const valueInput = el("input", { type: "text", class: "kv-value", placeholder: "value", "aria-label": `${this.kind} value`, spellcheck: "false", autocomplete: "off" });
    nameInput.value = name;
    valueInput.value = value;
    const remove = el("button", { type: "button", class: "small icon", title: `Remove this ${this.kind}`, "aria-label": `Remove ${this.kind}` }, "×");
    const row = el("div", { class: "kv-row" }, nameInput, valueInput, remove);
    remove.addEventListener("click", () => {
      row.remove();
      this.onChange();
    });
    this.container.append(row);
    if (focus) nameInput.focus();
    this.onChange();
    return row;
  }

  // [[name, value], ...] of the rows whose name is filled in.
  pairs() {
    return Array.from(this.container.querySelectorAll(".kv-row"))
      .map((row) => [row.querySelector(".kv-name").value.trim(), row.querySelector(".kv-value").value])
      .filter(([name]) => name !== "");
  }

  // Replace the rows; values may be lists (a repeated query parameter).
  load(mapping) {
    this.container.replaceChildren();
    for (const [name, value] of Object.entries(mapping || {})) {
      for (const item of Array.isArray(value) ? value : [value]) this.addRow(name, String(item));
    }
    this.onChange();
  }
}

// Query pairs -> {"name": "value"} or {"name": ["v1", "v2"]} when repeated.
export function pairsToQuery(pairs) {
  const query = {};
  for (const [name, value] of pairs) {
    if (!(name in query)) query[name] = value;
    else if (Array.isArray(query[name])) query[name].push(value);
    else query[name] = [query[name], value];
  }
  return query;
}
