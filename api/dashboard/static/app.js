// The dashboard shell: sign-in, the workspace switcher, and hash routing to pages.
import { ApiError, get, hasRole, post, session } from "./api.js";
import { h, replace, toast, errorText } from "./ui.js";

const ROUTES = [
  [/^\/tasks\/([\w-]+)$/, () => import("./pages/task.js")],
  [/^\/tasks$/, () => import("./pages/tasks.js")],
  [/^\/new$/, () => import("./pages/new-task.js")],
  [/^\/repos$/, () => import("./pages/repos.js")],
  [/^\/blueprints\/([\w-]+)$/, () => import("./pages/blueprint.js")],
  [/^\/blueprints$/, () => import("./pages/blueprints.js")],
  [/^\/templates$/, () => import("./pages/templates.js")],
  [/^\/secrets$/, () => import("./pages/secrets.js")],
  [/^\/costs$/, () => import("./pages/costs.js")],
  [/^\/workspaces$/, () => import("./pages/workspaces.js")],
  [/^\/setup$/, () => import("./pages/setup.js")],
];

// Set when the person leaves for an OAuth provider: back here, the session cookie signs
// them in. Without it a fresh visit asks for nothing it would be refused (no 401 noise).
const COOKIE_HINT = "optio.cookieSession";
const main = () => document.getElementById("main");
let current = null; // the page shown: its cleanup runs before the next one

async function signIn(token) {
  session.token = token || null;
  try {
    session.me = await get("/api/auth/me");
  } catch (err) {
    session.me = null;
    if (err instanceof ApiError && err.status === 401) return false;
    throw err;
  }
  if (!session.workspace) session.workspace = session.me.user.workspaceId;
  return true;
}

function showSignIn(message) {
  document.getElementById("topbar").hidden = true;
  document.title = "Sign in · Optio";
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, placeholder: "optio_pat_…" });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const providers = h("div", { class: "providers" });
  const form = h("form", { class: "signin panel", onsubmit: async (e) => {
    e.preventDefault();
    try {
      session.workspace = null; // another person's token: their default workspace
      if (await signIn(input.value.trim())) { await start(); return; }
      error.textContent = "That token was not accepted: check it, or mint one with `optio token create`.";
    } catch (err) { error.textContent = errorText(err); }
  } },
    h("h1", {}, "Sign in to Optio"),
    h("p", {}, "Paste an API token: the one `make run` printed, or one from `optio token create`."),
    h("div", { class: "field" }, h("label", { for: "token" }, "API token"), input),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    error,
    providers,
  );
  replace(main(), form);
  input.focus();
  get("/api/auth/providers").then(({ providers: list }) => {
    if (!list.length) return;
    replace(providers, h("p", {}, "Or sign in with"), ...list.map((p) =>
      h("a", { class: "button", href: `/api/auth/${encodeURIComponent(p.name)}/login`, onclick: () => localStorage.setItem(COOKIE_HINT, "1") }, p.displayName)));
  }).catch(() => {});
  const params = new URLSearchParams(location.search);
  if (params.get("error")) error.textContent = `Sign-in failed: ${params.get("error")}`;
}

async function fillWorkspaces() {
  const select = document.getElementById("workspace-switch");
  const { workspaces } = await get("/api/workspaces");
  replace(select, ...workspaces.map((w) =>
    h("option", { value: w.id, selected: w.id === session.me.user.workspaceId }, `${w.name} (${w.role})`)));
  document.getElementById("who-role").textContent = session.me.user.workspaceRole;
  document.body.dataset.role = session.me.user.workspaceRole;
  document.querySelector('#nav a[href="#/new"]').parentElement.hidden = !hasRole("member");
}

let navigation = 0; // a newer navigation wins over one still loading

async function route() {
  const mine = ++navigation;
  current?.cleanup?.();
  current = null;
  // "#/tasks?view=list": the part after "?" is the page's own (pages read it).
  const path = (location.hash || "#/tasks").slice(1).split("?")[0] || "/tasks";
  for (const a of document.querySelectorAll("#nav a")) {
    const active = path === a.getAttribute("href").slice(1) || path.startsWith(`${a.getAttribute("href").slice(1)}/`);
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  for (const [pattern, load] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    const page = await load();
    if (mine !== navigation) return;
    const root = h("div", { class: "page" });
    replace(main(), root);
    // Busy until the page has rendered and taken the focus (screen readers wait; so can tests).
    main().setAttribute("aria-busy", "true");
    let shown = null;
    try {
      shown = (await page.render(root, ...match.slice(1))) || null;
    } catch (err) {
      replace(root, h("p", { class: "error", role: "alert" }, errorText(err)));
    }
    if (mine !== navigation) { shown?.cleanup?.(); return; }
    current = shown;
    main().focus({ preventScroll: true });
    main().setAttribute("aria-busy", "false");
    return;
  }
  location.hash = "#/tasks";
}

async function start() {
  document.getElementById("topbar").hidden = false;
  await fillWorkspaces();
  if (location.pathname !== "/") history.replaceState(null, "", `/${location.hash}`);
  if (!location.hash) {
    const setup = await get("/api/setup/status").catch(() => null);
    // Unless the person went somewhere meanwhile: the hashchange draws that page.
    if (!location.hash) location.hash = setup && !setup.isSetUp ? "#/setup" : "#/tasks";
    return;
  }
  await route();
}

function wire() {
  window.addEventListener("hashchange", route);
  window.addEventListener("optio:signed-out", () => {
    current?.cleanup?.();
    session.token = null;
    showSignIn("Your session ended: sign in again.");
  });
  document.getElementById("workspace-switch").addEventListener("change", async (e) => {
    const id = e.target.value;
    try {
      session.workspace = id;
      await post(`/api/workspaces/${encodeURIComponent(id)}/switch`);
      session.me = await get("/api/auth/me");
      await fillWorkspaces();
      toast("Workspace switched", "ok");
      await route();
    } catch (err) { toast(errorText(err), "error"); }
  });
  document.getElementById("sign-out").addEventListener("click", async () => {
    current?.cleanup?.();
    if (!session.token) await post("/api/auth/logout").catch(() => {});
    session.token = null;
    session.workspace = null;
    session.me = null;
    localStorage.removeItem(COOKIE_HINT);
    showSignIn("Signed out.");
  });
  const toggle = document.getElementById("menu-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.getElementById("nav").classList.toggle("open", open);
  });
  document.getElementById("nav").addEventListener("click", (e) => {
    if (e.target.closest("a")) { toggle.setAttribute("aria-expanded", "false"); document.getElementById("nav").classList.remove("open"); }
  });
}

wire();
// A stored token first; else a session cookie from an OAuth sign-in; else the form.
if (session.token || localStorage.getItem(COOKIE_HINT)) {
  signIn(session.token).then((ok) => (ok ? start() : showSignIn())).catch((err) => showSignIn(errorText(err)));
} else {
  showSignIn();
}
