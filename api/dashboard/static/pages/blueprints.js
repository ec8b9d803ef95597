// Blueprints: scheduled repo-task configurations; create one with its schedule.
import { get, hasRole, post } from "../api.js";
import { attempt, emptyRow, field, formValues, h, pageTitle, repoName, replace, section, when } from "../ui.js";
import { AGENTS } from "./new-task.js";

export async function render(root) {
  const canWrite = hasRole("member");
  const table = h("tbody");
  async function load() {
    const { tasks } = await get("/api/tasks?type=repo-blueprint&limit=200");
    const rows = await Promise.all(tasks.map(async (b) => {
      const { triggers } = await get(`/api/tasks/${b.id}/triggers`).catch(() => ({ triggers: [] }));
      const next = triggers.map((t) => t.nextFireAt).filter(Boolean).sort()[0];
      return h("tr", { dataset: { blueprintId: b.id } },
        h("td", {}, h("a", { href: `#/blueprints/${b.id}` }, b.name)), h("td", {}, repoName(b.repoUrl)),
        h("td", {}, triggers.map((t) => (t.type === "schedule" ? `schedule ${t.config.cronExpression}` : t.type)).join(", ") || "–"),
        h("td", {}, next ? when(next) : "–"), h("td", {}, b.enabled ? "yes" : "no"));
    }));
    replace(table, ...(rows.length ? rows : [emptyRow(5, "No blueprints yet.")]));
  }
  const repos = await get("/api/repos").then((r) => r.repos).catch(() => []);
  const form = canWrite ? section("New blueprint", h("form", { class: "form", onsubmit: async (e) => {
    e.preventDefault();
    const { cron, timezone, ...body } = formValues(e.target);
    body.type = "repo-blueprint";
    const made = await attempt(() => post("/api/tasks", body));
    if (!made) return;
    const id = made.task.id;
    if (cron) {
      const config = { cronExpression: cron };
      if (timezone) config.timezone = timezone;
      if (!(await attempt(() => post(`/api/tasks/${id}/triggers`, { type: "schedule", config }), "Blueprint and schedule created"))) return;
    }
    location.hash = `#/blueprints/${id}`;
  } },
    h("div", { class: "row" }, field("Name", h("input", { name: "name", required: true })), field("Task title", h("input", { name: "title", required: true }))),
    field("Repository", h("input", { name: "repoUrl", required: true, list: "bp-repos" })),
    h("datalist", { id: "bp-repos" }, repos.map((r) => h("option", { value: r.repoUrl }))),
    field("Prompt", h("textarea", { name: "prompt", required: true, rows: 5 })),
    h("div", { class: "row" },
      field("Agent", h("select", { name: "agentType" }, h("option", { value: "" }, "The repo's default"), AGENTS.map((a) => h("option", { value: a }, a)))),
      field("Schedule (cron)", h("input", { name: "cron", placeholder: "0 9 * * 1-5" }), "Leave empty for run-now only."),
      field("Time zone", h("input", { name: "timezone", placeholder: "UTC" }))),
    h("button", { type: "submit", class: "primary" }, "Create blueprint"))) : null;
  replace(root, pageTitle("Blueprints"),
    h("div", { class: "table-wrap" }, h("table", {}, h("caption", { class: "visually-hidden" }, "Blueprints"),
      h("thead", {}, h("tr", {}, ["Name", "Repo", "Triggers", "Next run", "Enabled"].map((c) => h("th", { scope: "col" }, c)))), table)),
    form);
  await load();
  return null;
}
