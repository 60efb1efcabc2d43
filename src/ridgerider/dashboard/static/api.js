// REST and server-sent-events access to /api/v1, with the token from the browser session.
export const API = "/api/v1";
const TOKEN_KEY = "ridgerider.token";

export class AuthError extends Error {}
export class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export function authHeaders() {
  const t = token.get();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export async function request(path, opts = {}) {
  const r = await fetch(API + path, { ...opts, headers: { ...authHeaders(), ...(opts.headers || {}) } });
  if (r.status === 401 || r.status === 403) throw new AuthError(`HTTP ${r.status}`);
  if (!r.ok) {
    const text = await r.text();
    let body = text;
    try { body = JSON.parse(text); } catch { /* plain text */ }
    throw new HttpError(r.status, body);
  }
  return r;
}

export async function getJSON(path) {
  return (await request(path)).json();
}

// Items of a paginated listing ({items: [...], next_after}) up to `max` items.
export async function getAll(path, key, max = 100000) {
  const out = [];
  let cursor = null;
  const sep = path.includes("?") ? "&" : "?";
  for (;;) {
    const page = await getJSON(cursor == null ? path : `${path}${sep}after=${encodeURIComponent(cursor)}`);
    const items = Array.isArray(page) ? page : page[key] || page.items || [];
    out.push(...items);
    cursor = Array.isArray(page) ? null : page.next_after ?? page.next_cursor ?? null;
    if (cursor == null || out.length >= max || items.length === 0) return out;
  }
}

// Download a node's parameters with the token (a plain link cannot carry the header).
export async function download(path, filename) {
  const blob = await (await request(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Server-sent events over fetch (EventSource cannot send an Authorization header).
// Calls onEvent({event, data, id}) per message; resolves when the stream ends.
export async function streamEvents(path, onEvent, signal, lastId = null) {
  const headers = { ...authHeaders(), Accept: "text/event-stream" };
  if (lastId != null) headers["Last-Event-ID"] = String(lastId);
  const r = await fetch(API + path, { headers, signal });
  if (r.status === 401 || r.status === 403) throw new AuthError(`HTTP ${r.status}`);
  if (!r.ok || !r.body) throw new HttpError(r.status, "no event stream");
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let last = lastId;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buf += value;
    const blocks = buf.split(/\r?\n\r?\n/);
    buf = blocks.pop();
    for (const block of blocks) {
      const msg = { event: "message", data: "", id: null };
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (!line || line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "data") data.push(val);
        else if (field === "event") msg.event = val;
        else if (field === "id") msg.id = val;
      }
      if (!data.length && msg.event === "message") continue;
      msg.data = data.join("\n");
      try { msg.json = JSON.parse(msg.data); } catch { msg.json = null; }
      if (msg.id != null) last = msg.id;
      onEvent(msg);
    }
  }
}
