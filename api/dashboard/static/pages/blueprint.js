// One blueprint: its triggers (next fire time), runs, and run-now with parameters.
import { del, get, hasRole, patch, post } from "../api.js";
import {
  attempt, confirmAction, emptyRow, field, h, pageTitle, repoName, replace, section, stateBadge, when,
} from "../ui.js";

export async function render(root, id) {
  const canWrite = hasRole("member");
  const { task: bp } = await get(`/api/tasks/${id}`);
  const triggers = h("tbody");
  const runs = h("tbody");
  async function load() {
    const [t, r] = await Promise.all([get(`/api/tasks/${id}/triggers`), get(`/api/tasks/${id}/runs`)]);
    replace(triggers, ...(t.triggers.length ? t.triggers.map((tr) => h("tr", {},
      h("td", {}, tr.type), h("td", {}, h("code", {}, tr.type === "schedule" ? tr.config.cronExpression : JSON.stringify(tr.config))),
      h("td", {}, when(tr.nextFireAt) || "–"), h("td", {}, when(tr.lastFiredAt) || "–"),
      h("td", {}, canWrite ? [
        h("button", { type: "button", onclick: async () => { if (await attempt(() => patch(`/api/tasks/${id}/triggers/${tr.id}`, { enabled: !tr.enabled }), tr.enabled ? "Paused" : "Enabled")) await load(); } }, tr.enabled ? "Pause" : "Enable"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!(await confirmAction("Delete this trigger?", { okLabel: "Delete" }))) return;
          if (await attempt(() => del(`/api/tasks/${id}/triggers/${tr.id}`), "Trigger deleted")) await load();
        } }, "Delete")] : (tr.enabled ? "enabled" : "paused"))))
      : [emptyRow(5, "No triggers.")]));
    replace(runs, ...(r.runs.length ? r.runs.map((run) => h("tr", {},
      h("td", {}, h("a", { href: `#/tasks/${run.id}` }, run.title || run.id)), h("td", {}, run.state ? stateBadge(run.state) : ""), h("td", {}, when(run.createdAt))))
      : [emptyRow(3, "No runs yet.")]));
  }
  const runNow = canWrite ? h("form", { class: "form", onsubmit: async (e) => {
    e.preventDefault();
    let params = {};
    const raw = e.target.elements.params.value.trim();
    if (raw) { try { params = JSON.parse(raw); } catch { replace(e.target.querySelector(".error"), "Parameters must be a JSON object."); return; } }
    const made = await attempt(() => post(`/api/tasks/${id}/runs`, { params }), "Run started");
    if (made) await load();
  } }, field("Parameters (JSON, optional)", h("textarea", { name: "params", rows: 2, placeholder: '{"ticket": "ABC-1"}' })),
    h("p", { class: "error", role: "alert" }), h("button", { type: "submit", class: "primary" }, "Run now")) : null;
  const addTrigger = canWrite ? h("form", { class: "form row", onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const config = { cronExpression: f.cron.value.trim() };
    if (f.timezone.value.trim()) config.timezone = f.timezone.value.trim();
    if (await attempt(() => post(`/api/tasks/${id}/triggers`, { type: "schedule", config }), "Schedule added")) { e.target.reset(); await load(); }
  } }, field("Cron", h("input", { name: "cron", required: true, placeholder: "*/30 * * * *" })), field("Time zone", h("input", { name: "timezone", placeholder: "UTC" })),
    h("button", { type: "submit" }, "Add schedule")) : null;
  replace(root, h("p", {}, h("a", { href: "#/blueprints" }, "← Blueprints")), pageTitle(bp.name),
    h("p", {}, repoName(bp.repoUrl), " · ", bp.agentType || "repo default", " · ", bp.enabled ? "enabled" : "disabled"),
    h("details", {}, h("summary", {}, "Prompt"), h("pre", { class: "prompt" }, bp.prompt)),
    section("Triggers", h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Type", "Config", "Next fire", "Last fired", ""].map((c) => h("th", { scope: "col" }, c)))), triggers)), addTrigger),
    section("Run now", runNow || h("p", { class: "muted" }, "Viewers cannot start runs.")),
    section("Runs", h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Run", "State", "Started"].map((c) => h("th", { scope: "col" }, c)))), runs))));
  await load();
  return null;
}
