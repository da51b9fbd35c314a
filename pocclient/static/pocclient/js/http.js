// fetch() for the console's JSON endpoints: session cookie, CSRF header, JSON errors.

import { $ } from "./dom.js";

export class ApiError extends Error {
  constructor(status, payload) {
    const message = payload?.error?.message || `The server answered ${status}.`;
    super(message);
    this.status = status;
    this.payload = payload || {};
  }

  get errors() {
    return this.payload.errors || null;
  }
}

function csrfToken() {
  return $("input[name=csrfmiddlewaretoken]")?.value || "";
}

// A session that ended shows the banner once; every caller still gets its ApiError.
function noticeSession(status) {
  if (status === 401) $("#session-expired").hidden = false;
}

async function parse(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return { error: { code: "bad_response", message: `The server answered ${response.status} with something that is not JSON.` } };
  }
}

export async function request(url, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken();
  }
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  noticeSession(response.status);
  return response;
}

export async function getJSON(url) {
  const response = await request(url);
  const payload = await parse(response);
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

export async function postJSON(url, body, { signal } = {}) {
  const response = await request(url, { method: "POST", body, signal });
  const payload = await parse(response);
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

// POST, then hand each NDJSON line to onLine as it arrives.
export async function postNDJSON(url, body, onLine, { signal } = {}) {
  const response = await request(url, { method: "POST", body, signal });
  if (!response.ok) throw new ApiError(response.status, await parse(response));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) onLine(JSON.parse(line));
      newline = buffered.indexOf("\n");
    }
  }
  if (buffered.trim()) onLine(JSON.parse(buffered));
}
