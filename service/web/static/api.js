// Calls to the service: the API key, JSON in and out, problems as errors, event streams.

const KEY_STORE = "loss-service-api-key";

export function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

export function setApiKey(value) {
  if (value) localStorage.setItem(KEY_STORE, value);
  else localStorage.removeItem(KEY_STORE);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

export class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { detail: text }; }
  if (!response.ok) throw new Problem(response.status, parsed);
  return parsed;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
export const del = (path) => call("DELETE", path);

export async function download(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw new Problem(response.status, await response.json().catch(() => null));
  return response.blob();
}

// Server-Sent Events over fetch (EventSource cannot send the Authorization header).
// Calls onEvent(name, data) for each event; resolves when the stream ends or is aborted.
export async function followEvents(path, onEvent, signal) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) throw new Problem(response.status, await response.json().catch(() => null));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

// A problem document as HTML-free DOM: its detail and each field it names.
export function showProblem(box, error) {
  box.replaceChildren();
  box.hidden = false;
  const body = error instanceof Problem ? error.body : {};
  const title = document.createElement("strong");
  title.textContent = `${body.title || "Error"}${error.status ? ` (${error.status})` : ""}: `;
  const detail = document.createElement("span");
  detail.textContent = body.detail || error.message;
  box.append(title, detail);
  const fields = (body.errors || []).filter((item) => Array.isArray(item.loc));
  if (fields.length) {
    const list = document.createElement("ul");
    for (const item of fields) {
      const li = document.createElement("li");
      li.textContent = `${item.loc.join(".")}: ${item.msg}`;
      li.dataset.field = item.loc.join(".");
      list.append(li);
    }
    box.append(list);
  }
  return fields.map((item) => item.loc);
}

export function hideProblem(box) {
  box.hidden = true;
  box.replaceChildren();
}
