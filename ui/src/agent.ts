// One agent's page: facts, endpoints, live instances, and its card with the A2A version switch.

import { Api, ApiError } from "./api";
import { byId, h, replace, when } from "./dom";
import type { AgentDetail } from "./model";
import { statusBadge } from "./table";

/** Draws started; an answer that arrives after a later draw started is dropped (stale). */
let detailDraws = 0;
let cardDraws = 0;

/** Draw agent `agentId`'s page from `GET /v1/agents/{id}` and its card. */
export async function drawAgent(api: Api, agentId: string): Promise<void> {
  const draw = ++detailDraws;
  const error = byId("agent-error", HTMLParagraphElement);
  let detail: AgentDetail;
  try {
    detail = await api.json<AgentDetail>(`/v1/agents/${encodeURIComponent(agentId)}`);
    if (draw !== detailDraws) return;
    error.textContent = "";
  } catch (failure) {
    if (draw !== detailDraws) return;
    replace(byId("agent-heading", HTMLHeadingElement), agentId);
    error.textContent = failure instanceof ApiError ? failure.message : "the registry is unreachable";
    return;
  }
  const view = detail.agent;
  replace(byId("agent-heading", HTMLHeadingElement), view.name || detail.agent_id);
  const facts: [string, Node | string][] = [
    ["Id", h("code", {}, detail.agent_id)],
    ["Status", statusBadge(detail.status)],
    ["Description", view.description || "—"],
    ["Version", view.version || "—"],
    ["Card format", view.card_format || "—"],
    ["Skills", (view.skills ?? []).map((s) => (s.name ? `${s.id} (${s.name})` : s.id)).join(", ") || "—"],
    ["Tags", (view.tags ?? []).join(", ") || "—"],
    ["Labels", Object.entries(view.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"],
    ["Verified", detail.verified == null ? "not checked" : detail.verified ? "yes" : "no"],
    ["Signature", detail.signature ?? "not checked"],
    ["Lease", detail.lease ? `${detail.lease.ttl_s} s` : "—"],
    ["First seen", when(detail.first_seen)],
    ["Last seen", when(detail.last_seen)],
    ["Revision", String(detail.revision)],
  ];
  replace(
    byId("agent-facts", HTMLDListElement),
    ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
  const endpoints = byId("agent-endpoints", HTMLTableElement).tBodies[0];
  if (endpoints !== undefined) {
    replace(
      endpoints,
      ...(view.endpoints ?? []).map((e) =>
        h(
          "tr",
          {},
          h("td", { "data-label": "Transport" }, e.transport),
          h("td", { "data-label": "Protocol" }, e.protocol),
          h("td", { "data-label": "Version" }, e.protocol_version ?? "—"),
          h("td", { "data-label": "Binding" }, e.binding ?? "—"),
          h(
            "td",
            { "data-label": "Address" },
            h("code", {}, e.url ?? `exchange "${e.exchange ?? ""}", routing key "${e.routing_key ?? ""}"`),
          ),
        ),
      ),
    );
  }
  const instances = byId("agent-instances", HTMLTableElement).tBodies[0];
  if (instances !== undefined) {
    const rows = detail.instances.map((i) =>
      h(
        "tr",
        {},
        h("td", { "data-label": "Instance" }, h("code", {}, i.instance_id)),
        h("td", { "data-label": "Lease until" }, when(i.lease_deadline)),
        h("td", { "data-label": "First seen" }, when(i.first_seen)),
        h("td", { "data-label": "Last seen" }, when(i.last_seen)),
      ),
    );
    if (rows.length === 0) rows.push(h("tr", {}, h("td", { colspan: 4, class: "empty" }, "None live.")));
    replace(instances, ...rows);
  }
  await drawCard(api, agentId);
}

/** Draw the agent's card, pretty-printed, in the A2A version the switch asks for. */
export async function drawCard(api: Api, agentId: string): Promise<void> {
  const draw = ++cardDraws;
  const version = byId("card-version", HTMLSelectElement).value;
  const pre = byId("card", HTMLPreElement);
  try {
    const headers: Record<string, string> = version ? { "A2A-Version": version } : {};
    const text = await (await api.get(`/v1/agents/${encodeURIComponent(agentId)}/card`, headers)).text();
    if (draw !== cardDraws) return;
    let pretty = text;
    try {
      pretty = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not JSON after all: show it as it came
    }
    pre.textContent = pretty;
  } catch (failure) {
    if (draw !== cardDraws) return;
    pre.textContent = failure instanceof ApiError ? `(${failure.message})` : "(the registry is unreachable)";
  }
}
