// Workspaces and members: create a workspace, switch to it, see and manage its members.
import { del, get, hasRole, patch, post, session } from "../api.js";
import { attempt, confirmAction, emptyRow, field, h, pageTitle, replace, section, when } from "../ui.js";

export async function render(root) {
  const admin = hasRole("admin");
  const list = h("tbody");
  const members = h("tbody");
  const wsId = session.me.user.workspaceId;
  async function load() {
    const [{ workspaces }, m] = await Promise.all([get("/api/workspaces"), get(`/api/workspaces/${wsId}/members`)]);
    replace(list, ...workspaces.map((w) => h("tr", {}, h("td", {}, w.name), h("td", {}, h("code", {}, w.slug)), h("td", {}, w.role),
      h("td", {}, w.id === wsId ? "active" : ""))));
    replace(members, ...(m.members.length ? m.members.map((u) => h("tr", {},
      h("td", {}, u.displayName || u.email || u.userId), h("td", {}, u.email || ""),
      h("td", {}, admin && u.userId !== session.me.user.id
        ? h("select", { "aria-label": `Role of ${u.displayName || u.email || u.userId}`, onchange: async (e) => {
          if (await attempt(() => patch(`/api/workspaces/${wsId}/members/${u.userId}`, { role: e.target.value }), "Role changed")) await load();
        } }, ["viewer", "member", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)))
        : u.role),
      h("td", {}, when(u.createdAt)),
      h("td", {}, admin && u.userId !== session.me.user.id ? h("button", { type: "button", class: "danger", onclick: async () => {
        if (!(await confirmAction(`Remove ${u.email || u.userId} from this workspace?`, { okLabel: "Remove" }))) return;
        if (await attempt(() => del(`/api/workspaces/${wsId}/members/${u.userId}`), "Removed")) await load();
      } }, "Remove") : null)))
      : [emptyRow(5, "No members.")]));
  }
  const invite = admin ? section("Add a member", h("form", { class: "form row", onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const found = await attempt(() => get(`/api/users/lookup?email=${encodeURIComponent(f.email.value.trim())}`));
    if (!found) return;
    if (await attempt(() => post(`/api/workspaces/${wsId}/members`, { userId: found.user.id, role: f.role.value }), "Member added")) { e.target.reset(); await load(); }
  } }, field("Email", h("input", { name: "email", type: "email", required: true })),
    field("Role", h("select", { name: "role" }, ["viewer", "member", "admin"].map((r) => h("option", { value: r, selected: r === "member" }, r)))),
    h("button", { type: "submit" }, "Add"))) : null;
  const create = section("New workspace", h("form", { class: "form row", onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const body = { name: f.name.value.trim(), slug: f.slug.value.trim() };
    if (await attempt(() => post("/api/workspaces", body), "Workspace created: switch to it above")) { e.target.reset(); await load(); }
  } }, field("Name", h("input", { name: "name", required: true })),
    field("Slug", h("input", { name: "slug", required: true, pattern: "[a-z0-9-]+", title: "lower-case letters, digits and dashes" })),
    h("button", { type: "submit" }, "Create")));
  replace(root, pageTitle("Workspaces"),
    section("Your workspaces", h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Slug", "Your role", ""].map((c) => h("th", { scope: "col" }, c)))), list))),
    section("Members of this workspace", h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Email", "Role", "Since", ""].map((c) => h("th", { scope: "col" }, c)))), members)), invite),
    create);
  await load();
  return null;
}
