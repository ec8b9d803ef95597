// A log viewer that stays smooth with 100,000 lines: lines are kept in memory and drawn
// in blocks the browser skips laying out while off screen (content-visibility), search
// filters in memory, and "follow" keeps the newest line in view.
import { h, replace } from "./ui.js";

const BLOCK = 500;

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
  const recent = new Set(); // keys of the history's tail: the socket's catch-up repeats it
  let needle = "";
  let follow = true;
  let lastBlock = null;
  let shownInBlock = 0;
  let shown = 0;

  const view = h("div", { class: "log-view", id: "log-view", tabindex: 0, role: "log", "aria-label": "Task logs", "aria-live": "off" });
  const status = h("span", { class: "muted", id: "log-status" }, "Loading…");
  const search = h("input", { type: "search", id: "log-search", placeholder: "Search logs", oninput: () => { needle = search.value.toLowerCase(); redraw(); } });
  const followBox = h("input", { type: "checkbox", id: "log-follow", checked: true, onchange: () => { follow = followBox.checked; if (follow) scrollEnd(); } });
  const element = h("div", { class: "logs" },
    h("div", { class: "toolbar" },
      h("label", { for: "log-search", class: "visually-hidden" }, "Search logs"), search,
      h("label", { class: "check" }, followBox, " Follow"), status),
    view);

  const scrollEnd = () => { view.scrollTop = view.scrollHeight; };
  view.addEventListener("scroll", () => {
    const atEnd = view.scrollHeight - view.scrollTop - view.clientHeight < 40;
    if (!atEnd && follow) { follow = false; followBox.checked = false; }
  });

  function line(entry) {
    const ts = entry.timestamp ? new Date(entry.timestamp).toLocaleTimeString() : "";
    return h("div", { class: `log-line log-${kind(entry)}`, dataset: { logType: entry.logType || "text" } },
      h("span", { class: "ts" }, ts), h("span", { class: "lt" }, entry.logType || ""), h("span", { class: "msg" }, entry.content));
  }

  function draw(entries) {
    for (const entry of entries) {
      if (needle && !String(entry.content).toLowerCase().includes(needle)) continue;
      if (!lastBlock || shownInBlock >= BLOCK) {
        lastBlock = h("div", { class: "log-block" });
        view.append(lastBlock);
        shownInBlock = 0;
      }
      lastBlock.append(line(entry));
      shownInBlock += 1;
      shown += 1;
    }
    status.textContent = needle ? `${shown} of ${lines.length} lines match` : `${lines.length} lines`;
    if (follow) scrollEnd();
  }

  function redraw() {
    replace(view);
    lastBlock = null;
    shownInBlock = 0;
    shown = 0;
    draw(lines);
  }

  return {
    element,
    addHistory(entries) {
      lines.push(...entries);
      for (const e of entries.slice(-200)) recent.add(key(e));
      draw(entries);
    },
    addLive(event) {
      if (event.catchUp && recent.has(key(event))) return;
      lines.push(event);
      draw([event]);
    },
    ended() { status.textContent = `${lines.length} lines · stream ended`; },
  };
}
