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

// body: a value sent as JSON; raw: a string or FormData sent as it is (with contentType for
// a string; the browser sets a form's).
export async function request(url, { method = "GET", body, raw, contentType, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    if (raw === undefined) headers["Content-Type"] = "application/json";
    else if (contentType) headers["Content-Type"] = contentType;
    headers["X-CSRFToken"] = csrfToken();
  }
  const response = await fetch(url, {
    method,
    headers,
    body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
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

// POST a string (with its content type) or a FormData; the JSON answer.
export async function postRaw(url, raw, { contentType, signal } = {}) {
  const response = await request(url, { method: "POST", raw, contentType, signal });
  const payload = await parse(response);
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}
