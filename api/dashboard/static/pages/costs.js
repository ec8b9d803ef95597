// Costs: daily cost, by repo and by model, drawn as inline SVG from /api/analytics/costs.
import { get } from "../api.js";
import { h, pageTitle, repoName, replace, section, usd } from "../ui.js";

const NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function barsByDay(days, label) {
  const width = 640, height = 180, pad = 24;
  const max = Math.max(0.01, ...days.map((d) => Number(d.cost)));
  const w = (width - pad) / Math.max(1, days.length);
  return svg("svg", { viewBox: `0 0 ${width} ${height + 20}`, role: "img", "aria-label": label, class: "chart" },
    svg("title", {}, label),
    ...days.map((d, i) => {
      const bh = (Number(d.cost) / max) * height;
      return svg("rect", { x: pad + i * w + 1, y: height - bh, width: Math.max(1, w - 2), height: bh, class: "bar" },
        svg("title", {}, `${d.date}: ${usd(d.cost)} (${d.taskCount} tasks)`));
    }),
    svg("text", { x: 0, y: 12, class: "axis" }, usd(max)), svg("text", { x: 0, y: height, class: "axis" }, "$0"),
    days.length ? svg("text", { x: pad, y: height + 16, class: "axis" }, days[0].date) : svg("text", {}),
    days.length ? svg("text", { x: width - 70, y: height + 16, class: "axis" }, days[days.length - 1].date) : svg("text", {}));
}

function barsByName(rows, label) {
  const max = Math.max(0.01, ...rows.map((r) => Number(r.cost)));
  const height = rows.length * 26 + 4;
  return svg("svg", { viewBox: `0 0 640 ${height}`, role: "img", "aria-label": label, class: "chart" },
    svg("title", {}, label),
    ...rows.flatMap((r, i) => [
      svg("text", { x: 0, y: i * 26 + 17, class: "axis" }, r.name),
      svg("rect", { x: 220, y: i * 26 + 4, width: Math.max(1, (Number(r.cost) / max) * 340), height: 18, class: "bar" }),
      svg("text", { x: 566, y: i * 26 + 17, class: "axis" }, usd(r.cost)),
    ]));
}

export async function render(root) {
  const body = h("div");
  const daysSelect = h("select", { id: "cost-days", onchange: () => load() },
    [7, 30, 90, 365].map((d) => h("option", { value: d, selected: d === 30 }, `${d} days`)));
  async function load() {
    const data = await get(`/api/analytics/costs?days=${daysSelect.value}`);
    const s = data.summary;
    const byModel = data.costByModel || [];
    replace(body,
      h("dl", { class: "facts summary" },
        h("dt", {}, "Total"), h("dd", {}, usd(s.totalCost)), h("dt", {}, "Tasks"), h("dd", {}, String(s.taskCount)),
        h("dt", {}, "Average"), h("dd", {}, usd(s.averageCost)),
        h("dt", {}, "Trend"), h("dd", {}, s.costTrend === null || s.costTrend === undefined ? "–" : `${Number(s.costTrend).toFixed(1)}%`)),
      section("Daily cost", barsByDay(data.dailyCosts || [], "Cost per day")),
      section("By repository", barsByName((data.costByRepo || []).map((r) => ({ name: repoName(r.repoUrl), cost: r.cost })), "Cost by repository")),
      section("By model", byModel.length ? barsByName(byModel.map((r) => ({ name: r.model || "unknown", cost: r.totalCost })), "Cost by model") : h("p", { class: "muted" }, "No cost by model yet.")),
      section("By type", barsByName((data.costByType || []).map((r) => ({ name: r.taskType, cost: r.cost })), "Cost by task type")),
      section("Most expensive tasks", h("ol", {}, (data.topTasks || []).map((t) => h("li", {}, h("a", { href: `#/tasks/${t.id}` }, t.title), ` ${usd(t.costUsd)}`)))));
  }
  replace(root, pageTitle("Costs", h("label", { for: "cost-days" }, "Period"), daysSelect), body);
  await load();
  return null;
}
