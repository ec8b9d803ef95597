// Tasks: a board by state and a filtered list, both paged, updated live over /ws/events.
import { get, hasRole, live, post, query } from "../api.js";
import {
  STATES, ago, attempt, confirmAction, h, pageTitle, repoName, replace, stateBadge, usd,
} from "../ui.js";

const COLUMNS = [
  { title: "Queued", states: ["pending", "waiting_on_deps", "queued"] },
  { title: "Running", states: ["provisioning", "running"] },
  { title: "Needs attention", states: ["needs_attention"] },
  { title: "PR opened", states: ["pr_opened"] },
  { title: "Completed", states: ["completed"] },
  { title: "Failed or cancelled", states: ["failed", "cancelled"] },
];
const QUEUE = COLUMNS[0].states;
const PAGE = 25;
const AGENTS = ["claude-code", "codex", "copilot", "opencode", "gemini", "openclaw", "script"];

export async function render(root) {
  const tasks = new Map(); // id -> task, everything loaded so far
  const loaded = Object.fromEntries(STATES.map((s) => [s, 0]));
  const more = Object.fromEntries(STATES.map((s) => [s, false]));
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const filters = { view: params.get("view") || "board", state: "", repo: "", agent: "", type: "", text: "" };
  const canWrite = hasRole("member");

  const boardEl = h("div", { class: "board", id: "board" });
  const listEl = h("div", { class: "list", id: "list" });
  const counter = h("p", { class: "muted", "aria-live": "polite" });

  async function loadState(state) {
    const page = await get(`/api/tasks${query({ state, limit: PAGE, offset: loaded[state] })}`);
    for (const t of page.tasks) tasks.set(t.id, t);
    loaded[state] += page.tasks.length;
    more[state] = page.tasks.length === PAGE;
  }

  function matches(t) {
    if (filters.state && t.state !== filters.state) return false;
    if (filters.repo && t.repoUrl !== filters.repo) return false;
    if (filters.agent && t.agentType !== filters.agent) return false;
    if (filters.type && t.taskType !== filters.type) return false;
    if (filters.text) {
      const needle = filters.text.toLowerCase();
      if (!`${t.title} ${t.prompt} ${t.id}`.toLowerCase().includes(needle)) return false;
    }
    return true;
  }

  function card(t, { reorder = null } = {}) {
    return h("li", { class: "card", dataset: { taskId: t.id, state: t.state } },
      h("a", { href: `#/tasks/${t.id}`, class: "card-title" }, t.title),
      h("div", { class: "card-meta" },
        stateBadge(t.state), " ", h("span", {}, repoName(t.repoUrl)), " · ", t.agentType,
        t.prUrl ? [" · ", h("a", { href: t.prUrl, target: "_blank", rel: "noopener" }, `PR #${t.prNumber ?? ""}`)] : null,
        t.costUsd ? ` · ${usd(t.costUsd)}` : null,
        " · ", h("time", { datetime: t.updatedAt }, ago(t.updatedAt))),
      reorder);
  }

  function sorted(list, states) {
    return states === QUEUE ? list.sort((a, b) => a.priority - b.priority || a.createdAt.localeCompare(b.createdAt))
      : list.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  }

  function reorderButtons(t, column, index) {
    if (!canWrite || !QUEUE.includes(t.state)) return null;
    const move = (delta) => async () => {
      const ids = column.map((c) => c.id);
      const from = ids.indexOf(t.id);
      const to = from + delta;
      if (to < 0 || to >= ids.length) return;
      [ids[from], ids[to]] = [ids[to], ids[from]];
      const ok = await attempt(() => post("/api/tasks/reorder", { taskIds: ids }), "Queue reordered");
      if (ok) {
        ids.forEach((id, i) => { const x = tasks.get(id); if (x) x.priority = i + 1; });
        draw();
        document.querySelector(`[data-task-id="${t.id}"] button[data-move="${delta < 0 ? "up" : "down"}"]`)?.focus();
      }
    };
    return h("div", { class: "reorder" },
      h("button", { type: "button", "aria-label": `Move ${t.title} up`, dataset: { move: "up" }, disabled: index === 0, onclick: move(-1) }, "↑"),
      h("button", { type: "button", "aria-label": `Move ${t.title} down`, dataset: { move: "down" }, disabled: index === column.length - 1, onclick: move(1) }, "↓"));
  }

  function drawBoard() {
    replace(boardEl, ...COLUMNS.map((col) => {
      const items = sorted([...tasks.values()].filter((t) => col.states.includes(t.state) && matches(t)), col.states);
      const hasMore = col.states.some((s) => more[s]);
      return h("section", { class: "column", "aria-label": col.title, dataset: { column: col.states.join(" ") } },
        h("h2", {}, col.title, " ", h("span", { class: "count" }, String(items.length), hasMore ? "+" : "")),
        h("ul", {}, items.map((t, i) => card(t, { reorder: reorderButtons(t, items, i) }))),
        hasMore ? h("button", { type: "button", class: "link", onclick: async () => {
          await Promise.all(col.states.filter((s) => more[s]).map(loadState));
          draw();
        } }, `Load more ${col.title.toLowerCase()}`) : null);
    }));
  }

  let listOffset = 0;
  let listPage = [];
  async function loadList() {
    const page = await get(`/api/tasks${query({ state: filters.state, limit: 50, offset: listOffset })}`);
    listPage = page.tasks;
    for (const t of page.tasks) tasks.set(t.id, t);
  }

  function drawList() {
    const rows = listPage.map((t) => tasks.get(t.id) || t).filter(matches);
    const selectAll = h("input", { type: "checkbox", "aria-label": "Select all tasks on this page", onchange: (e) => {
      for (const box of listEl.querySelectorAll("tbody input[type=checkbox]")) box.checked = e.target.checked;
    } });
    const selected = () => [...listEl.querySelectorAll("tbody input:checked")].map((b) => tasks.get(b.value));
    const bulk = async (action) => {
      const chosen = selected();
      if (!chosen.length) return;
      const ok = await confirmAction(`${action === "cancel" ? "Cancel" : "Retry"} ${chosen.length} task(s)?`, { okLabel: action === "cancel" ? "Cancel tasks" : "Retry tasks" });
      if (!ok) return;
      await attempt(() => Promise.all(chosen.map((t) => post(`/api/tasks/${t.id}/${action}`))), `${chosen.length} task(s): ${action} sent`);
    };
    replace(listEl,
      canWrite ? h("div", { class: "toolbar" },
        h("button", { type: "button", onclick: () => bulk("retry") }, "Retry selected"),
        h("button", { type: "button", class: "danger", onclick: () => bulk("cancel") }, "Cancel selected")) : null,
      h("div", { class: "table-wrap" }, h("table", {},
        h("caption", { class: "visually-hidden" }, "Tasks"),
        h("thead", {}, h("tr", {}, canWrite ? h("th", { scope: "col" }, selectAll) : null,
          ...["Title", "State", "Repo", "Agent", "Priority", "Cost", "Updated"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.length ? rows.map((t) => h("tr", { dataset: { taskId: t.id } },
          canWrite ? h("td", {}, h("input", { type: "checkbox", value: t.id, "aria-label": `Select ${t.title}` })) : null,
          h("td", {}, h("a", { href: `#/tasks/${t.id}` }, t.title)), h("td", {}, stateBadge(t.state)),
          h("td", {}, repoName(t.repoUrl)), h("td", {}, t.agentType), h("td", {}, String(t.priority)),
          h("td", {}, usd(t.costUsd)), h("td", {}, ago(t.updatedAt))))
          : h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No tasks match."))))),
      h("div", { class: "pager" },
        h("button", { type: "button", disabled: listOffset === 0, onclick: async () => { listOffset = Math.max(0, listOffset - 50); await loadList(); draw(); } }, "Previous page"),
        h("span", {}, listPage.length ? `Tasks ${listOffset + 1}–${listOffset + listPage.length}` : "No tasks on this page"),
        h("button", { type: "button", disabled: listPage.length < 50, onclick: async () => { listOffset += 50; await loadList(); draw(); } }, "Next page")));
  }

  function draw() {
    boardEl.hidden = filters.view !== "board";
    listEl.hidden = filters.view !== "list";
    if (filters.view === "board") drawBoard(); else drawList();
    counter.textContent = `${tasks.size} task(s) loaded`;
  }

  const repos = await get("/api/repos").then((r) => r.repos).catch(() => []);
  const select = (name, label, options) => h("div", { class: "field" },
    h("label", { for: `filter-${name}` }, label),
    h("select", { id: `filter-${name}`, onchange: async (e) => {
      filters[name] = e.target.value;
      if (name === "state" && filters.view === "list") { listOffset = 0; await loadList(); }
      draw();
    } }, h("option", { value: "" }, "Any"), options.map(([v, t]) => h("option", { value: v }, t))));
  const viewToggle = h("div", { class: "segmented", role: "group", "aria-label": "View" },
    ...["board", "list"].map((v) => h("button", { type: "button", "aria-pressed": String(filters.view === v), onclick: async (e) => {
      filters.view = v;
      for (const b of e.target.parentElement.children) b.setAttribute("aria-pressed", String(b === e.target));
      if (v === "list") await loadList();
      draw();
    } }, v === "board" ? "Board" : "List")));

  replace(root,
    pageTitle("Tasks", viewToggle, canWrite ? h("a", { class: "button primary", href: "#/new" }, "New task") : null,
      canWrite ? h("button", { type: "button", class: "danger", onclick: async () => {
        if (!(await confirmAction("Cancel every running and queued task of this workspace?", { okLabel: "Cancel all" }))) return;
        await attempt(() => post("/api/tasks/bulk/cancel-active"), "Active tasks cancelled");
      } }, "Cancel all active") : null,
      canWrite ? h("button", { type: "button", onclick: async () => {
        if (!(await confirmAction("Retry every failed task of this workspace?", { okLabel: "Retry all" }))) return;
        await attempt(() => post("/api/tasks/bulk/retry-failed"), "Failed tasks retried");
      } }, "Retry all failed") : null),
    h("form", { class: "filters", role: "search", "aria-label": "Filter tasks", onsubmit: (e) => e.preventDefault() },
      select("state", "State", STATES.map((s) => [s, s.replaceAll("_", " ")])),
      select("repo", "Repo", repos.map((r) => [r.repoUrl, r.fullName || repoName(r.repoUrl)])),
      select("agent", "Agent", AGENTS.map((a) => [a, a])),
      select("type", "Type", [["coding", "coding"], ["review", "review"], ["step", "step"], ["child", "child"]]),
      h("div", { class: "field" }, h("label", { for: "filter-text" }, "Search"),
        h("input", { id: "filter-text", type: "search", placeholder: "title, prompt or id", oninput: (e) => { filters.text = e.target.value; draw(); } }))),
    counter, boardEl, listEl);

  await Promise.all(STATES.map(loadState));
  if (filters.view === "list") await loadList();
  draw();

  // Live: a changed or new task is fetched again and redrawn where it now belongs.
  const pending = new Set();
  let timer = null;
  const refresh = () => {
    timer = null;
    const ids = [...pending];
    pending.clear();
    Promise.all(ids.map((id) => get(`/api/tasks/${id}`).then((r) => tasks.set(id, r.task)).catch(() => tasks.delete(id))))
      .then(draw);
  };
  const socket = live("/ws/events", (event) => {
    if (!event.taskId || !String(event.type).startsWith("task:")) return;
    if (event.catchUp && !tasks.has(event.taskId)) return;
    pending.add(event.taskId);
    timer ??= setTimeout(refresh, 150);
  });
  return { cleanup() { socket.close(); if (timer) clearTimeout(timer); } };
}
