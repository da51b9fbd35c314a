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

// api_client.validation.BODYLESS_METHODS: pocclient never sends a body with these (the page
// and the client refuse one), so neither does the command, whatever the body box holds.
const BODYLESS = new Set(["GET", "HEAD", "OPTIONS"]);

// curl's own choice of method: GET, or POST once --data is given; -X only says otherwise.
// HEAD is --head, as -X HEAD would make curl wait for a body that never comes.
function methodOption(method, hasBody) {
  if (method === "HEAD") return " --head";
  return method === (hasBody ? "POST" : "GET") ? "" : ` -X ${method}`;
}

export function curlCommand({ baseUrl, method, path, query, headers, json }) {
  if (BODYLESS.has(method)) json = undefined;
  const first = `curl${methodOption(method, json !== undefined)}`;
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
