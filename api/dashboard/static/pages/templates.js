// Task templates: reusable title, prompt, repo and agent for the new-task form.
import { del, get, hasRole, post } from "../api.js";
import { attempt, confirmAction, emptyRow, field, formValues, h, pageTitle, repoName, replace, section } from "../ui.js";
import { AGENTS } from "./new-task.js";

export async function render(root) {
  const canWrite = hasRole("member");
  const table = h("tbody");
  async function load() {
    const { templates } = await get("/api/task-templates");
    replace(table, ...(templates.length ? templates.map((t) => h("tr", {},
      h("td", {}, t.name), h("td", {}, t.title || "–"), h("td", {}, repoName(t.repoUrl) || "any"), h("td", {}, t.agentType || "default"),
      h("td", {}, canWrite ? h("button", { type: "button", class: "danger", onclick: async () => {
        if (!(await confirmAction(`Delete the template ${t.name}?`, { okLabel: "Delete" }))) return;
        if (await attempt(() => del(`/api/task-templates/${t.id}`), "Deleted")) await load();
      } }, `Delete ${t.name}`) : null))) : [emptyRow(5, "No templates yet.")]));
  }
  const form = canWrite ? section("New template", h("form", { class: "form", onsubmit: async (e) => {
    e.preventDefault();
    if (await attempt(() => post("/api/task-templates", formValues(e.target)), "Template saved")) { e.target.reset(); await load(); }
  } },
    h("div", { class: "row" }, field("Name", h("input", { name: "name", required: true })), field("Task title", h("input", { name: "title" }))),
    field("Prompt", h("textarea", { name: "prompt", required: true, rows: 5 })),
    h("div", { class: "row" }, field("Repository (optional)", h("input", { name: "repoUrl" })),
      field("Agent", h("select", { name: "agentType" }, h("option", { value: "" }, "default"), AGENTS.map((a) => h("option", { value: a }, a))))),
    h("button", { type: "submit", class: "primary" }, "Save template"))) : null;
  replace(root, pageTitle("Templates"),
    h("div", { class: "table-wrap" }, h("table", {}, h("caption", { class: "visually-hidden" }, "Task templates"),
      h("thead", {}, h("tr", {}, ["Name", "Title", "Repo", "Agent", ""].map((c) => h("th", { scope: "col" }, c)))), table)),
    form);
  await load();
  return null;
}
