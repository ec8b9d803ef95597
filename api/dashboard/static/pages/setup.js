// The setup wizard: an agent key, a forge token, a first repository, then a first task.
import { get, hasRole, post } from "../api.js";
import { attempt, field, h, pageTitle, replace } from "../ui.js";
import { AGENTS } from "./new-task.js";

const AGENT_KEYS = [
  ["ANTHROPIC_API_KEY", "Claude Code (Anthropic API key)"], ["CLAUDE_CODE_OAUTH_TOKEN", "Claude Code (OAuth token)"],
  ["OPENAI_API_KEY", "Codex (OpenAI API key)"], ["GEMINI_API_KEY", "Gemini"], ["COPILOT_GITHUB_TOKEN", "Copilot"],
];

export async function render(root) {
  const status = await get("/api/setup/status");
  const admin = hasRole("admin");
  const steps = h("ol", { class: "wizard-steps" });
  const body = h("div", { class: "panel" });
  let step = 0;
  const names = ["Agent key", "Forge token", "First repository", "First task"];

  function show(n) {
    step = n;
    replace(steps, ...names.map((name, i) => h("li", { "aria-current": i === step ? "step" : null, class: i < step ? "done" : "" }, name)));
    replace(body, ...[agentStep, forgeStep, repoStep, taskStep][n]());
    body.querySelector("input, select, textarea, button")?.focus();
  }
  const nav = (skipLabel) => h("div", { class: "actions" },
    step > 0 ? h("button", { type: "button", onclick: () => show(step - 1) }, "Back") : null,
    h("button", { type: "button", onclick: () => show(step + 1) }, skipLabel));

  function secretForm(id, choices, done, hint) {
    const select = h("select", { name: "name" }, choices.map(([v, l]) => h("option", { value: v }, l)));
    return [
      h("p", {}, hint),
      done ? h("p", { class: "ok" }, "Already configured: you may replace it or go on.") : null,
      h("form", { class: "form", id, onsubmit: async (e) => {
        e.preventDefault();
        const value = e.target.elements.value.value;
        if (await attempt(() => post("/api/secrets", { name: select.value, value }), `${select.value} saved`)) show(step + 1);
      } }, field("Credential", select), field("Value", h("input", { name: "value", type: "password", required: true, autocomplete: "new-password" })),
        h("button", { type: "submit", class: "primary" }, "Save and continue")),
      nav(done ? "Continue" : "Skip for now")];
  }
  const agentStep = () => secretForm("setup-agent", AGENT_KEYS, status.steps.anyAgentKey.done,
    "The agents run with your provider key, stored encrypted as a workspace secret.");
  const forgeStep = () => secretForm("setup-forge", [["GITHUB_TOKEN", "GitHub token"], ["GITLAB_TOKEN", "GitLab token"]], status.steps.gitToken.done,
    "Optio pushes branches and opens pull requests with this token.");
  function repoStep() {
    return [h("p", {}, "Connect the repository the agents will work on: a forge URL, or a local path under OPTIO_LOCAL_REPO_ROOTS."),
      h("form", { class: "form", id: "setup-repo", onsubmit: async (e) => {
        e.preventDefault();
        const f = e.target.elements;
        const body = { repoUrl: f.repoUrl.value.trim(), defaultAgentType: f.agent.value };
        if (await attempt(() => post("/api/repos", body), "Repository connected")) { sessionStorage.setItem("optio.setupRepo", body.repoUrl); show(3); }
      } }, field("Repository", h("input", { name: "repoUrl", required: true })),
        field("Default agent", h("select", { name: "agent" }, AGENTS.map((a) => h("option", { value: a }, a)))),
        h("button", { type: "submit", class: "primary" }, "Connect and continue")),
      nav("Skip")];
  }
  function taskStep() {
    const repo = sessionStorage.getItem("optio.setupRepo") || "";
    return [h("p", {}, "Setup is done once you finish here. Start a first task to see it work."),
      h("form", { class: "form", id: "setup-task", onsubmit: async (e) => {
        e.preventDefault();
        const f = e.target.elements;
        if (!(await attempt(() => post("/api/setup/complete")))) return;
        const made = await attempt(() => post("/api/tasks", { title: f.title.value, prompt: f.prompt.value, repoUrl: f.repoUrl.value }), "Setup complete: your first task is queued");
        if (made) location.hash = `#/tasks/${made.task.id}`;
      } }, field("Repository", h("input", { name: "repoUrl", required: true, value: repo })),
        field("Title", h("input", { name: "title", required: true, value: "Say hello" })),
        field("Prompt", h("textarea", { name: "prompt", required: true, rows: 4 }, "Add a HELLO.md that says hello from Optio.")),
        h("button", { type: "submit", class: "primary" }, "Finish setup and start the task")),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => show(2) }, "Back"),
        h("button", { type: "button", onclick: async () => {
          if (await attempt(() => post("/api/setup/complete"), "Setup complete")) location.hash = "#/tasks";
        } }, "Finish without a task"))];
  }

  if (!admin) {
    replace(root, pageTitle("Setup"), h("p", {}, status.isSetUp ? "Optio is set up." : "Optio is not set up yet: ask a workspace admin to finish the setup."));
    return null;
  }
  replace(root, pageTitle("Setup"),
    h("p", {}, status.isSetUp ? "Optio is already set up; you can still change its credentials here." : "Welcome! Three steps and a first task."),
    h("nav", { "aria-label": "Setup steps" }, steps), body);
  show(status.steps.anyAgentKey.done ? (status.steps.gitToken.done ? 2 : 1) : 0);
  return null;
}
