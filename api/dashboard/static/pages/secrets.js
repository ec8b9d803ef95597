// Secrets: names and scopes only; an admin sets or replaces a value (never shown back).
import { del, get, hasRole, post } from "../api.js";
import { attempt, confirmAction, emptyRow, field, h, pageTitle, replace, section, when } from "../ui.js";

export async function render(root) {
  const admin = hasRole("admin");
  const table = h("tbody");
  async function load() {
    const { secrets } = await get("/api/secrets");
    replace(table, ...(secrets.length ? secrets.map((s) => h("tr", { dataset: { secret: s.name } },
      h("td", {}, h("code", {}, s.name)), h("td", {}, s.scope), h("td", {}, when(s.updatedAt)),
      h("td", {}, admin ? h("button", { type: "button", class: "danger", onclick: async () => {
        if (!(await confirmAction(`Delete the secret ${s.name}? Runs that need it will fail.`, { okLabel: "Delete" }))) return;
        if (await attempt(() => del(`/api/secrets/${encodeURIComponent(s.name)}`), "Deleted")) await load();
      } }, `Delete ${s.name}`) : null))) : [emptyRow(4, "No secrets yet.")]));
  }
  const form = admin ? section("Set or replace a secret", h("form", { class: "form", onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const body = { name: f.name.value.trim(), value: f.value.value };
    if (f.scope.value.trim()) body.scope = f.scope.value.trim();
    if (await attempt(() => post("/api/secrets", body), `Secret ${body.name} saved`)) { e.target.reset(); await load(); }
  } },
    h("div", { class: "row" },
      field("Name", h("input", { name: "name", required: true, pattern: "[A-Z_][A-Z0-9_]*", title: "Capital letters, digits and underscores", placeholder: "ANTHROPIC_API_KEY", autocomplete: "off" })),
      field("Value", h("input", { name: "value", type: "password", required: true, autocomplete: "new-password" })),
      field("Scope (optional)", h("input", { name: "scope", placeholder: "global" }))),
    h("p", { class: "muted" }, "The value is encrypted at rest and never shown again; saving an existing name replaces it."),
    h("button", { type: "submit", class: "primary" }, "Save secret"))) : null;
  replace(root, pageTitle("Secrets"),
    h("div", { class: "table-wrap" }, h("table", {}, h("caption", { class: "visually-hidden" }, "Secrets"),
      h("thead", {}, h("tr", {}, ["Name", "Scope", "Updated", ""].map((c) => h("th", { scope: "col" }, c)))), table)),
    form);
  await load();
  return null;
}
