// One task: header, actions, timeline, live logs, comments, subtasks and dependencies.
import { get, hasRole, live, post } from "../api.js";
import { renderLogs } from "../logs.js";
import {
  attempt, confirmAction, h, pageTitle, repoName, replace, section, stateBadge, usd, when,
} from "../ui.js";

const ENDED = ["completed", "failed", "cancelled"];

function temporalLink(taskId) {
  const base = document.querySelector('meta[name="optio-temporal-ui"]')?.content;
  const ns = document.querySelector('meta[name="optio-temporal-namespace"]')?.content || "default";
  if (!base) return null;
  return h("a", { href: `${base}/namespaces/${encodeURIComponent(ns)}/workflows/task-${encodeURIComponent(taskId)}`, target: "_blank", rel: "noopener" }, "Workflow in Temporal UI");
}

// [label, path, allowed states, destructive, prompt label]
const ACTIONS = [
  ["Cancel", "cancel", ["pending", "waiting_on_deps", "queued", "provisioning", "running", "needs_attention", "pr_opened"], true, null],
  ["Retry", "retry", ["failed", "cancelled"], false, null],
  ["Resume", "resume", ["needs_attention", "failed"], false, "What should the agent do next?"],
  ["Force restart", "force-restart", ["needs_attention", "failed", "pr_opened"], true, "Prompt for the fresh session (optional)"],
  ["Force redo", "force-redo", ["needs_attention", "failed", "pr_opened", "completed", "cancelled"], true, null],
];

export async function render(root, taskId) {
  const header = h("div", { class: "task-header" });
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Task actions" });
  const timeline = h("ol", { class: "timeline" });
  const comments = h("ul", { class: "comments" });
  const graph = h("div", {});
  const logs = renderLogs();
  let task = null;

  async function loadTask() {
    const data = await get(`/api/tasks/${taskId}`);
    task = data.task;
    drawHeader(data);
    drawActions();
  }

  function drawHeader(data) {
    const t = data.task;
    replace(header,
      pageTitle(t.title),
      h("dl", { class: "facts" },
        h("dt", {}, "State"), h("dd", { id: "task-state" }, stateBadge(t.state)),
        data.pendingReason ? [h("dt", {}, "Waiting"), h("dd", {}, data.pendingReason)] : null,
        h("dt", {}, "Repo"), h("dd", {}, repoName(t.repoUrl), " @ ", t.repoBranch),
        h("dt", {}, "Agent"), h("dd", {}, t.agentType, t.modelUsed ? ` (${t.modelUsed})` : t.metadata?.model ? ` (${t.metadata.model})` : ""),
        h("dt", {}, "Pull request"), h("dd", { id: "task-pr" }, t.prUrl
          ? [h("a", { href: t.prUrl, target: "_blank", rel: "noopener" }, `#${t.prNumber}`), ` ${t.prState || ""}`,
            t.prChecksStatus ? ` · checks ${t.prChecksStatus}` : "", t.prReviewStatus ? ` · review ${t.prReviewStatus}` : ""]
          : "none yet"),
        h("dt", {}, "Cost"), h("dd", {}, usd(t.costUsd), t.maxCostUsd ? ` of ${usd(t.maxCostUsd)}` : "",
          t.inputTokens !== null ? ` · ${t.inputTokens ?? 0} in / ${t.outputTokens ?? 0} out tokens` : ""),
        h("dt", {}, "Priority"), h("dd", {}, String(t.priority)),
        h("dt", {}, "Retries"), h("dd", {}, `${t.retryCount} of ${t.maxRetries}`),
        t.errorMessage ? [h("dt", {}, "Error"), h("dd", { class: "error" }, t.errorMessage)] : null,
        t.resultSummary ? [h("dt", {}, "Result"), h("dd", {}, t.resultSummary)] : null,
        data.stallInfo?.isStalled ? [h("dt", {}, "Stalled"), h("dd", { class: "error" }, `silent for ${Math.round(data.stallInfo.silentForMs / 1000)} s`)] : null,
        h("dt", {}, "Created"), h("dd", {}, when(t.createdAt))),
      h("p", {}, temporalLink(t.id)),
      h("details", {}, h("summary", {}, "Prompt"), h("pre", { class: "prompt" }, t.prompt)));
  }

  function drawActions() {
    if (!hasRole("member")) { replace(actions); return; }
    const buttons = ACTIONS.filter(([, , states]) => states.includes(task.state)).map(([label, path, , destructive, prompt]) =>
      h("button", { type: "button", class: destructive ? "danger" : "", onclick: async () => {
        let body = {};
        if (prompt || destructive) {
          const answer = await confirmAction(`${label} “${task.title}”?`, { title: label, okLabel: label, prompt, required: path === "resume" });
          if (answer === null) return;
          if (typeof answer === "string" && answer.trim()) body = { prompt: answer.trim() };
        }
        if (await attempt(() => post(`/api/tasks/${taskId}/${path}`, body), `${label}: sent`)) await loadTask();
      } }, label));
    if (task.prUrl && task.prState === "open") {
      buttons.push(h("button", { type: "button", onclick: async () => {
        if (!(await confirmAction(`Merge ${task.prUrl}?`, { title: "Merge pull request", okLabel: "Merge" }))) return;
        await attempt(() => post("/api/pull-requests/merge", { prUrl: task.prUrl, mergeMethod: "squash" }), "Merge requested");
      } }, "Merge PR"));
    }
    if (["needs_attention", "failed"].includes(task.state)) {
      buttons.push(h("button", { type: "button", onclick: async () => {
        const text = await confirmAction("The message resumes the agent with it.", { title: "Message the agent", okLabel: "Send", prompt: "Message", required: true });
        if (text) await attempt(() => post(`/api/tasks/${taskId}/message`, { content: text }), "Message sent");
      } }, "Message"));
    }
    replace(actions, ...buttons);
  }

  async function loadTimeline() {
    const { events } = await get(`/api/tasks/${taskId}/events`);
    replace(timeline, ...events.map((e) => h("li", {},
      h("time", { datetime: e.createdAt }, when(e.createdAt)), " ",
      e.fromState ? [stateBadge(e.fromState), " → "] : null, stateBadge(e.toState), " ",
      h("code", {}, e.trigger), e.message ? ` ${e.message}` : "")));
  }

  async function loadComments() {
    const list = await get(`/api/tasks/${taskId}/comments`);
    replace(comments, ...(list.comments.length ? list.comments.map((c) =>
      h("li", {}, h("time", { datetime: c.createdAt }, when(c.createdAt)), h("p", {}, c.content))) : [h("li", { class: "muted" }, "No comments.")]));
  }

  async function loadGraph() {
    const [subs, deps] = await Promise.all([get(`/api/tasks/${taskId}/subtasks`), get(`/api/tasks/${taskId}/dependencies`)]);
    const link = (t) => h("li", {}, h("a", { href: `#/tasks/${t.id}` }, t.title), " ", stateBadge(t.state), t.taskType ? ` ${t.taskType}` : "");
    replace(graph,
      h("h3", {}, "Subtasks"), subs.subtasks.length ? h("ul", {}, subs.subtasks.map(link)) : h("p", { class: "muted" }, "None."),
      h("h3", {}, "Depends on"), deps.dependencies.length ? h("ul", {}, deps.dependencies.map(link)) : h("p", { class: "muted" }, "Nothing."));
  }

  const commentForm = hasRole("member") ? h("form", { class: "inline-form", onsubmit: async (e) => {
    e.preventDefault();
    const box = e.target.elements.content;
    if (await attempt(() => post(`/api/tasks/${taskId}/comments`, { content: box.value }), "Comment added")) { box.value = ""; await loadComments(); }
  } }, h("label", { for: "comment" }, "Add a comment"), h("textarea", { id: "comment", name: "content", rows: 2, required: true }),
    h("button", { type: "submit" }, "Comment")) : null;

  replace(root, h("p", {}, h("a", { href: "#/tasks" }, "← Tasks")), header, actions,
    h("div", { class: "task-grid" },
      section("Logs", logs.element),
      h("div", {}, section("Timeline", timeline), section("Comments", comments, commentForm), section("Subtasks and dependencies", graph))));

  await Promise.all([loadTask(), loadTimeline(), loadComments(), loadGraph()]);
  // History over HTTP, then everything new over the socket (its catch-up repeats the tail).
  for (let offset = 0; ; offset += 10000) {
    const page = await get(`/api/tasks/${taskId}/logs?limit=10000&offset=${offset}`);
    logs.addHistory(page.logs);
    if (page.logs.length < 10000) break;
  }
  let socket = null;
  let timer = null;
  const refresh = () => { timer = null; loadTask().catch(() => {}); loadTimeline().catch(() => {}); };
  socket = live(`/ws/logs/${taskId}`, (event) => {
    if (event.type === "task:log") logs.addLive(event);
    else if (event.type === "task:comment") loadComments().catch(() => {});
    else if (!event.catchUp && ["task:state_changed", "task:pr_changed", "task:message"].includes(event.type)) timer ??= setTimeout(refresh, 100);
  }, { onClose: () => { refresh(); logs.ended(); } });
  if (ENDED.includes(task.state)) logs.ended();
  return { cleanup() { socket?.close(); if (timer) clearTimeout(timer); } };
}
