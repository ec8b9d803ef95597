// Repos: the connected repositories and their settings; admins connect, edit, disconnect.
import { del, get, hasRole, patch, post } from "../api.js";
import { attempt, confirmAction, emptyRow, field, formValues, h, pageTitle, replace, section } from "../ui.js";
import { AGENTS } from "./new-task.js";

const FLAGS = [["autoMerge", "Auto-merge"], ["autoResume", "Auto-resume"], ["reviewEnabled", "Review"], ["requireApproval", "Require approval"], ["cautiousMode", "Cautious mode"]];

function settingsForm(repo, onSave) {
  const form = h("form", { class: "form", onsubmit: async (e) => {
    e.preventDefault();
    const body = formValues(form);
    if (!body.testCommand) body.testCommand = null;
    if (await attempt(() => onSave(body), "Saved")) await onSave.after?.();
  } },
    h("div", { class: "row" },
      field("Default branch", h("input", { name: "defaultBranch", value: repo.defaultBranch || "main" })),
      field("Default agent", h("select", { name: "defaultAgentType" }, AGENTS.map((a) => h("option", { value: a, selected: a === repo.defaultAgentType }, a)))),
      field("Max concurrent tasks", h("input", { name: "maxConcurrentTasks", type: "number", min: 1, value: repo.maxConcurrentTasks ?? 2 }))),
    field("Test command", h("input", { name: "testCommand", value: repo.testCommand || "" })),
    h("fieldset", {}, h("legend", {}, "Behaviour"), FLAGS.map(([name, label]) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", name, checked: Boolean(repo[name]) }), ` ${label}`))),
    h("button", { type: "submit" }, "Save settings"));
  return form;
}

export async function render(root) {
  const admin = hasRole("admin");
  const table = h("tbody");
  async function load() {
    const { repos } = await get("/api/repos");
    replace(table, ...(repos.length ? repos.map((r) => h("tr", {},
      h("td", {}, h("strong", {}, r.fullName || r.repoUrl), h("br"), h("small", { class: "muted" }, r.repoUrl)),
      h("td", {}, r.defaultBranch), h("td", {}, r.defaultAgentType), h("td", {}, String(r.maxConcurrentTasks)),
      h("td", {}, FLAGS.filter(([n]) => r[n]).map(([, l]) => l).join(", ") || "–"),
      h("td", {}, admin ? h("details", {}, h("summary", {}, `Edit ${r.fullName || "repo"}`),
        settingsForm(r, Object.assign((body) => patch(`/api/repos/${r.id}`, body), { after: load })),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!(await confirmAction(`Disconnect ${r.repoUrl}? Its tasks stay.`, { okLabel: "Disconnect" }))) return;
          if (await attempt(() => del(`/api/repos/${r.id}`), "Disconnected")) await load();
        } }, "Disconnect")) : null)))
      : [emptyRow(6, "No repository connected yet.")]));
  }
  const connect = admin ? section("Connect a repository", h("form", { class: "form", onsubmit: async (e) => {
    e.preventDefault();
    const body = formValues(e.target);
    if (await attempt(() => post("/api/repos", body), "Repository connected")) { e.target.reset(); await load(); }
  } },
    field("Repository URL or local path", h("input", { name: "repoUrl", required: true })),
    h("div", { class: "row" },
      field("Default branch", h("input", { name: "defaultBranch", placeholder: "main" })),
      field("Default agent", h("select", { name: "defaultAgentType" }, h("option", { value: "" }, "claude-code"), AGENTS.map((a) => h("option", { value: a }, a))))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "autoMerge" }), " Auto-merge when checks pass"),
    h("button", { type: "submit", class: "primary" }, "Connect"))) : null;
  replace(root, pageTitle("Repos"),
    h("div", { class: "table-wrap" }, h("table", {}, h("caption", { class: "visually-hidden" }, "Repositories"),
      h("thead", {}, h("tr", {}, ["Repository", "Branch", "Agent", "Concurrency", "Settings", ""].map((c) => h("th", { scope: "col" }, c)))), table)),
    connect);
  await load();
  return null;
}
