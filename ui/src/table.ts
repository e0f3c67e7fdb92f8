// The agents table and the counts per status.

import { byId, h, replace, when } from "./dom";
import { type Filters, matches } from "./filters";
import type { Agent } from "./model";

/** Rows drawn at most: the page stays responsive on a large registry; filters narrow it. */
export const MAX_ROWS = 500;

/** Draw the counts per status of every agent the page holds. */
export function drawCounts(agents: Iterable<Agent>): void {
  const counts = { live: 0, idle: 0, offline: 0, total: 0 };
  for (const agent of agents) {
    counts.total += 1;
    if (agent.status in counts) counts[agent.status] += 1;
  }
  for (const [status, n] of Object.entries(counts)) {
    byId(`count-${status}`, HTMLSpanElement).textContent = String(n);
  }
}

/** Draw the rows of the agents that pass `filters`, in agent id order. */
export function drawTable(agents: Iterable<Agent>, filters: Filters): void {
  const shown = [...agents].filter((agent) => matches(agent, filters));
  shown.sort((a, b) => (a.agent_id < b.agent_id ? -1 : a.agent_id > b.agent_id ? 1 : 0));
  const body = byId("agents", HTMLTableElement).tBodies[0];
  if (body === undefined) return;
  const rows = shown.slice(0, MAX_ROWS).map(row);
  if (rows.length === 0) {
    rows.push(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No agent matches.")));
  }
  replace(body, ...rows);
  const count = byId("match-count", HTMLParagraphElement);
  count.textContent =
    shown.length > MAX_ROWS
      ? `${shown.length} agents match; the first ${MAX_ROWS} are shown: narrow the filters.`
      : `${shown.length} ${shown.length === 1 ? "agent matches" : "agents match"}.`;
}

function row(agent: Agent): HTMLTableRowElement {
  const view = agent.agent;
  const skills = (view.skills ?? []).map((skill) => skill.id);
  const ways = new Set((view.endpoints ?? []).map((e) => `${e.protocol}/${e.transport}`));
  return h(
    "tr",
    { "data-agent-id": agent.agent_id, "data-status": agent.status },
    h("td", { "data-label": "Name" }, h("a", { href: agentHref(agent.agent_id) }, view.name || agent.agent_id)),
    h("td", { "data-label": "Id" }, h("code", {}, agent.agent_id)),
    h("td", { "data-label": "Status" }, statusBadge(agent.status)),
    h("td", { "data-label": "Skills" }, skills.join(", ") || "—"),
    h("td", { "data-label": "Protocols / transports" }, [...ways].join(", ") || "—"),
    h("td", { "data-label": "Live instances", class: "num" }, agent.live_instances),
    h("td", { "data-label": "Last seen" }, when(agent.last_seen)),
  );
}

/** A status as a word with a colour (the word carries the meaning, not the colour). */
export function statusBadge(status: string): HTMLSpanElement {
  return h("span", { class: `badge ${status}` }, status);
}

/** The page address of one agent. */
export function agentHref(agentId: string): string {
  return `#/agents/${encodeURIComponent(agentId)}`;
}
