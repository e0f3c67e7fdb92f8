// The filters of `GET /v1/agents`, applied to the page's copy of the registry with the
// registry's own rules (src/agentroster/registry/terms.py, as `Roster.find` does): tags,
// protocols and transports match in any case, skill ids and labels exactly, every given
// filter must match, `q` is text in the name, description, skill ids or names (any case).

import type { Agent, AgentView, Signature } from "./model";

export interface Filters {
  status: "all" | "live" | "idle" | "offline";
  skills: string[];
  tag: string;
  protocol: string;
  transport: string;
  labels: [string, string][];
  q: string;
  /** `true`: the registry fetched the agent's well-known card and it matched; `false`: not. */
  verified: boolean | null;
  /** The registry's check of the card's signatures (`valid`, `invalid`, `unsigned`). */
  signature: Signature | null;
}

/** The filters a form's fields say (comma-separated lists trimmed, empty items dropped). */
export function readFilters(form: HTMLFormElement): Filters {
  const data = new FormData(form);
  const text = (name: string): string => String(data.get(name) ?? "").trim();
  const list = (name: string): string[] =>
    text(name)
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
  const status = text("status");
  return {
    status: status === "live" || status === "idle" || status === "offline" ? status : "all",
    skills: list("skill"),
    tag: text("tag"),
    protocol: text("protocol"),
    transport: text("transport"),
    labels: list("label").map((item) => {
      const colon = item.indexOf(":");
      return colon < 0 ? [item, ""] : [item.slice(0, colon), item.slice(colon + 1)];
    }),
    q: text("q"),
    verified: text("verified") === "true" ? true : text("verified") === "false" ? false : null,
    signature: SIGNATURES.find((value) => value === text("signature")) ?? null,
  };
}

const SIGNATURES: readonly Signature[] = ["valid", "invalid", "unsigned"];

/** The protocol a card format belongs to (`mcp/server` is `mcp`), as `format_protocol` says. */
export function formatProtocol(cardFormat: string | undefined): string | null {
  const slash = (cardFormat ?? "").indexOf("/");
  return slash > 0 ? (cardFormat ?? "").slice(0, slash).toLowerCase() : null;
}

/** What `q` searches, lower-cased, as the registry builds it (`search_text`). */
export function searchText(view: AgentView): string {
  const parts = [view.name, view.description ?? ""];
  for (const skill of view.skills ?? []) parts.push(skill.id, skill.name ?? "");
  return parts.join("\n").toLowerCase();
}

/** Whether `agent` passes every filter. */
export function matches(agent: Agent, filters: Filters): boolean {
  if (filters.status !== "all" && agent.status !== filters.status) return false;
  if (filters.verified !== null && agent.verified !== filters.verified) return false;
  if (filters.signature !== null && agent.signature !== filters.signature) return false;
  const view = agent.agent;
  const skills = new Set((view.skills ?? []).map((skill) => skill.id));
  if (!filters.skills.every((skill) => skills.has(skill))) return false;
  const tag = filters.tag.toLowerCase();
  if (tag && !(view.tags ?? []).some((t) => t.toLowerCase() === tag)) return false;
  const endpoints = view.endpoints ?? [];
  const protocol = filters.protocol.toLowerCase();
  // an endpoint's protocol, or the card format's (an MCP server with no network endpoint)
  const speaks = (p: string): boolean =>
    formatProtocol(view.card_format) === p || endpoints.some((e) => e.protocol.toLowerCase() === p);
  if (protocol && !speaks(protocol)) return false;
  const transport = filters.transport.toLowerCase();
  if (transport && !endpoints.some((e) => e.transport.toLowerCase() === transport)) return false;
  const labels = view.labels ?? {};
  if (!filters.labels.every(([key, value]) => Object.hasOwn(labels, key) && labels[key] === value)) {
    return false;
  }
  const q = filters.q.toLowerCase();
  return !q || searchText(view).includes(q);
}
