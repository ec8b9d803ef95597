// Small DOM helpers: elements, messages, confirmation, formatting.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : null }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

export function errorText(err) {
  const details = err?.body?.details;
  if (Array.isArray(details) && details.length) {
    return `${err.message}: ${details.map((d) => `${d.field}: ${d.message}`).join("; ")}`;
  }
  return err?.message || String(err);
}

// Runs an action, reports its failure to the person, and returns whether it worked.
export async function attempt(action, success) {
  try {
    const result = await action();
    if (success) toast(success, "ok");
    return result ?? true;
  } catch (err) {
    toast(errorText(err), "error");
    return false;
  }
}

// Asks before a destructive action; with `prompt`, also asks for a text (returned).
export function confirmAction(text, { title = "Are you sure?", okLabel = "Confirm", prompt = null, required = false } = {}) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  const extra = document.getElementById("confirm-extra");
  extra.replaceChildren();
  let input = null;
  if (prompt) {
    input = h("textarea", { id: "confirm-input", rows: 4, required });
    extra.append(h("label", { for: "confirm-input" }, prompt), input);
  }
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") resolve(null);
      else resolve(input ? input.value : true);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (input || document.getElementById("confirm-ok")).focus();
  });
}

export const STATES = [
  "pending", "waiting_on_deps", "queued", "provisioning", "running",
  "needs_attention", "pr_opened", "completed", "failed", "cancelled",
];

export function stateBadge(state) {
  return h("span", { class: `state state-${state}` }, state.replaceAll("_", " "));
}

export function when(value) {
  if (!value) return "";
  const d = new Date(value);
  return d.toLocaleString();
}

export function ago(value) {
  if (!value) return "";
  const s = Math.round((Date.now() - new Date(value).getTime()) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function usd(value) {
  if (value === null || value === undefined || value === "") return "–";
  return `$${Number(value).toFixed(2)}`;
}

export function repoName(url) {
  if (!url) return "";
  return url.replace(/\.git$/, "").split(/[/:]/).slice(-2).join("/");
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("small", {}, hint) : null);
}

export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.type === "number") { if (el.value !== "") out[el.name] = Number(el.value); }
    else if (el.value !== "") out[el.name] = el.value;
  }
  return out;
}

export function section(title, ...children) {
  return h("section", { class: "panel", "aria-label": title }, h("h2", {}, title), ...children);
}

export function emptyRow(cols, text) {
  return h("tr", {}, h("td", { colspan: cols, class: "empty" }, text));
}

export function pageTitle(text, ...actions) {
  document.title = `${text} · Optio`;
  return h("div", { class: "page-head" }, h("h1", {}, text), actions.length ? h("div", { class: "actions" }, ...actions) : null);
}
