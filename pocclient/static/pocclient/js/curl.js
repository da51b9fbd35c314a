// "Copy as cURL": the current request as a shell command, with the token as a placeholder.

const TOKEN_PLACEHOLDER = '"Authorization: Bearer $API_TOKEN"';

// POSIX shell single quotes: nothing inside is special but the quote itself.
export function shellQuote(text) {
  return `'${String(text).replaceAll("'", "'\\''")}'`;
}

export function fullUrl(baseUrl, path, query) {
  const url = new URL(path.replace(/^\/+/, ""), baseUrl);
  for (const [name, value] of Object.entries(query || {})) {
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, item);
  }
  return url.toString();
}

export function curlCommand({ baseUrl, method, path, query, headers, json }) {
  const first = method === "GET" ? "curl" : `curl -X ${method}`;
  const lines = [`${first} ${shellQuote(fullUrl(baseUrl, path, query))}`];
  lines.push(`-H ${TOKEN_PLACEHOLDER}`, `-H ${shellQuote("Accept: application/json")}`);
  const names = Object.keys(headers || {}).map((name) => name.toLowerCase());
  if (json !== undefined && !names.includes("content-type")) {
    lines.push(`-H ${shellQuote("Content-Type: application/json")}`);
  }
  for (const [name, value] of Object.entries(headers || {})) lines.push(`-H ${shellQuote(`${name}: ${value}`)}`);
  if (json !== undefined) lines.push(`--data-raw ${shellQuote(JSON.stringify(json))}`);
  return lines.join(" \\\n  ");
}
