// A log viewer that stays smooth with 100,000 lines: every line is kept in memory, but
// only the rows in view (plus a margin) are in the DOM; rows have one fixed height, so
// the scroll position says which ones. Search filters in memory; "follow" keeps the
// newest line in view.
import { h, replace } from "./ui.js";

const ROW = 20; // px, the CSS .log-line height
const MARGIN = 40; // rows drawn above and below the visible ones

function kind(entry) {
  const t = entry.logType || "text";
  if (t.includes("error") || entry.stream === "stderr") return "error";
  if (t.startsWith("tool")) return "tool";
  if (t === "usage" || t === "system" || t === "info") return "meta";
  return "text";
}

function key(entry) {
  return `${Date.parse(entry.timestamp)}|${entry.content}`;
}

export function renderLogs() {
  const lines = [];
  let shown = lines; // the lines that match the search (all of them without one)
  const recent = new Set(); // keys of the history's tail: the socket's catch-up repeats it
  let needle = "";
  let follow = true;
  let drawn = [-1, -1];
  let frame = null;

  const rows = h("div", { class: "log-rows" });
  const sizer = h("div", { class: "log-sizer" }, rows);
  const view = h("div", { class: "log-view", id: "log-view", tabindex: 0, role: "log", "aria-label": "Task logs", "aria-live": "off" }, sizer);
  const status = h("span", { class: "muted", id: "log-status", "aria-live": "polite" }, "Loading…");
  const search = h("input", { type: "search", id: "log-search", placeholder: "Search logs", oninput: () => { needle = search.value.toLowerCase(); filter(); } });
  const followBox = h("input", { type: "checkbox", id: "log-follow", checked: true, onchange: () => { follow = followBox.checked; if (follow) scrollEnd(); } });
  const element = h("div", { class: "logs" },
    h("div", { class: "toolbar" },
      h("label", { for: "log-search", class: "visually-hidden" }, "Search logs"), search,
      h("label", { class: "check" }, followBox, " Follow"), status),
    view);

  function line(entry) {
    const ts = entry.timestamp ? new Date(entry.timestamp).toLocaleTimeString() : "";
    return h("div", { class: `log-line log-${kind(entry)}`, title: entry.content },
      h("span", { class: "ts" }, ts), h("span", { class: "lt" }, entry.logType || ""), h("span", { class: "msg" }, String(entry.content).replaceAll("\n", " ⏎ ")));
  }

  function draw() {
    frame = null;
    const first = Math.max(0, Math.floor(view.scrollTop / ROW) - MARGIN);
    const last = Math.min(shown.length, Math.ceil((view.scrollTop + view.clientHeight) / ROW) + MARGIN);
    if (first === drawn[0] && last === drawn[1]) return;
    drawn = [first, last];
    rows.style.transform = `translateY(${first * ROW}px)`;
    replace(rows, ...shown.slice(first, last).map(line));
  }
  const schedule = () => { frame ??= requestAnimationFrame(draw); };

  function resize() {
    sizer.style.height = `${shown.length * ROW}px`;
    status.textContent = needle ? `${shown.length} of ${lines.length} lines match` : `${lines.length} lines`;
    drawn = [-1, -1];
    if (follow) scrollEnd(); else schedule();
  }

  function scrollEnd() {
    view.scrollTop = view.scrollHeight;
    schedule();
  }

  function filter() {
    shown = needle ? lines.filter((e) => String(e.content).toLowerCase().includes(needle)) : lines;
    resize();
  }

  view.addEventListener("scroll", () => {
    const atEnd = view.scrollHeight - view.scrollTop - view.clientHeight < ROW * 2;
    if (!atEnd && follow) { follow = false; followBox.checked = false; }
    schedule();
  });

  function add(entries) {
    for (const e of entries) lines.push(e);
    if (needle) { for (const e of entries) if (String(e.content).toLowerCase().includes(needle)) shown.push(e); }
    resize();
  }

  return {
    element,
    addHistory(entries) {
      for (const e of entries.slice(-200)) recent.add(key(e));
      add(entries);
    },
    addLive(event) {
      if (event.catchUp && recent.has(key(event))) return;
      add([event]);
    },
    ended() { status.textContent = `${lines.length} lines · stream ended`; },
  };
}
