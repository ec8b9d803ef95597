// The API client: credentials, the active workspace, JSON in and out, live sockets.
const TOKEN_KEY = "optio.token";
const WORKSPACE_KEY = "optio.workspace";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export const session = {
  get token() { return localStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  },
  get workspace() { return localStorage.getItem(WORKSPACE_KEY); },
  set workspace(id) {
    if (id) {
      localStorage.setItem(WORKSPACE_KEY, id);
      // WebSockets carry no custom header: the API reads this cookie instead.
      document.cookie = `optio_workspace=${encodeURIComponent(id)}; path=/; SameSite=Strict`;
    } else {
      localStorage.removeItem(WORKSPACE_KEY);
      document.cookie = "optio_workspace=; path=/; max-age=0; SameSite=Strict";
    }
  },
  me: null,
};

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  if (session.token) h.Authorization = `Bearer ${session.token}`;
  if (session.workspace) h["X-Workspace-Id"] = session.workspace;
  return h;
}

export async function api(method, path, body, { idempotencyKey } = {}) {
  const extra = {};
  if (body !== undefined) extra["Content-Type"] = "application/json";
  if (idempotencyKey) extra["Idempotency-Key"] = idempotencyKey;
  const response = await fetch(path, {
    method,
    headers: headers(extra),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!response.ok) {
    if (response.status === 401 && path !== "/api/auth/me") window.dispatchEvent(new Event("optio:signed-out"));
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body, opts) => api("POST", path, body ?? {}, opts);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export function hasRole(minimum) {
  const rank = { viewer: 1, member: 2, admin: 3 };
  const role = session.me?.user?.workspaceRole;
  return (rank[role] || 0) >= rank[minimum];
}

// One live WebSocket that reconnects from the last event id it saw, so nothing is
// missed or repeated across a dropped connection (docs/api.md, "Resuming").
export function live(path, onEvent, { onClose } = {}) {
  let socket = null;
  let lastEventId = null;
  let stopped = false;
  let delay = 500;
  const open = () => {
    const url = new URL(path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (lastEventId !== null) url.searchParams.set("lastEventId", lastEventId);
    const protocols = ["optio-ws-v1"];
    if (session.token) protocols.push(`optio-auth-${session.token}`);
    socket = new WebSocket(url, protocols);
    socket.onmessage = (message) => {
      delay = 500;
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      if (event.type === "heartbeat") return;
      if (event.eventId !== undefined) lastEventId = event.eventId;
      onEvent(event);
    };
    socket.onclose = (close) => {
      if (stopped) return;
      // 1000: the task ended; 44xx: refused for a reason a retry will not fix (but 4408/4429).
      const final = close.code === 1000 || (close.code >= 4400 && ![4408, 4429].includes(close.code));
      if (final) { onClose?.(close); return; }
      setTimeout(() => { if (!stopped) open(); }, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  open();
  return { close() { stopped = true; socket?.close(1000); } };
}
