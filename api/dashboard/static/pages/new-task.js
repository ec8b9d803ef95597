// New task: repo picker, agent, priority, and a task template to start from.
import { get, hasRole, post } from "../api.js";
import { attempt, field, formValues, h, pageTitle, repoName, replace } from "../ui.js";

export const AGENTS = ["claude-code", "codex", "copilot", "opencode", "gemini", "openclaw", "script"];

export async function render(root) {
  if (!hasRole("member")) {
    replace(root, pageTitle("New task"), h("p", {}, "Your role in this workspace is viewer: you can read tasks, not create them."));
    return null;
  }
  const [{ repos }, { templates }] = await Promise.all([
    get("/api/repos"),
    get("/api/task-templates").catch(() => ({ templates: [] })),
  ]);
  // One key per filled-in form: a double click or a retried request makes one task.
  let idempotencyKey = crypto.randomUUID();

  const repoInput = h("input", { name: "repoUrl", required: true, list: "repo-options", autocomplete: "off" });
  const agent = h("select", { name: "agentType" }, h("option", { value: "" }, "The repo's default"), AGENTS.map((a) => h("option", { value: a }, a)));
  const title = h("input", { name: "title", required: true, maxlength: 500 });
  const prompt = h("textarea", { name: "prompt", required: true, rows: 8 });
  const branch = h("input", { name: "repoBranch", placeholder: "the repo's default" });
  const priority = h("input", { name: "priority", type: "number", min: 1, max: 1000, value: 100 });
  const retries = h("input", { name: "maxRetries", type: "number", min: 0, max: 10, value: 3 });
  const model = h("input", { name: "model", placeholder: "the agent's default" });
  const budget = h("input", { name: "maxCostUsd", inputmode: "decimal", placeholder: "none" });
  const template = h("select", { onchange: (e) => {
    const t = templates.find((x) => x.id === e.target.value);
    if (!t) return;
    if (t.title) title.value = t.title;
    prompt.value = t.prompt || "";
    if (t.repoUrl) repoInput.value = t.repoUrl;
    if (t.repoBranch) branch.value = t.repoBranch;
    if (t.agentType) agent.value = t.agentType;
    if (t.priority) priority.value = t.priority;
    if (t.maxRetries !== null && t.maxRetries !== undefined) retries.value = t.maxRetries;
  } }, h("option", { value: "" }, "None"), templates.map((t) => h("option", { value: t.id }, t.name)));
  repoInput.addEventListener("change", () => {
    const repo = repos.find((r) => r.repoUrl === repoInput.value);
    if (repo && !agent.value) agent.value = repo.defaultAgentType || "";
  });
  const error = h("p", { class: "error", role: "alert" });

  const form = h("form", { class: "panel form", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    const body = formValues(form);
    const made = await attempt(() => post("/api/tasks", body, { idempotencyKey }));
    if (!made) return;
    idempotencyKey = crypto.randomUUID();
    location.hash = "#/tasks";
  } },
    templates.length ? field("Start from template", template) : null,
    field("Repository", repoInput, repos.length ? "Pick a connected repository or type a git URL or local path." : "No repository is connected yet: type a git URL or local path, or connect one under Repos."),
    h("datalist", { id: "repo-options" }, repos.map((r) => h("option", { value: r.repoUrl }, r.fullName || repoName(r.repoUrl)))),
    field("Title", title), field("Prompt", prompt),
    h("div", { class: "row" }, field("Agent", agent), field("Branch", branch), field("Model", model)),
    h("div", { class: "row" }, field("Priority (lower runs first)", priority), field("Max retries", retries), field("Budget (USD)", budget)),
    h("button", { type: "submit", class: "primary" }, "Create task"), error);
  replace(root, pageTitle("New task"), form);
  return null;
}
