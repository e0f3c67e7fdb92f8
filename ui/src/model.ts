// The shapes the read API answers (see the OpenAPI document at /docs), as far as the page
// reads them. Everything is data from agents: shown as text only (dom.ts).

export type Status = "live" | "idle" | "offline";

export interface Endpoint {
  transport: string;
  protocol: string;
  protocol_version?: string | null;
  binding?: string | null;
  url?: string | null;
  exchange?: string | null;
  routing_key?: string | null;
}

export interface Skill {
  id: string;
  name?: string;
  description?: string;
  tags?: string[];
}

export interface AgentView {
  name: string;
  description?: string;
  version?: string;
  card_format?: string;
  endpoints?: Endpoint[];
  skills?: Skill[];
  tags?: string[];
  labels?: Record<string, string>;
}

/** An agent as `GET /v1/agents` lists it (and as events keep it current). */
export interface Agent {
  agent_id: string;
  status: Status;
  revision: number;
  live_instances: number;
  first_seen?: string | null;
  last_seen?: string | null;
  verified?: boolean | null;
  /** The registry's check of the card's signatures; absent while a signed card is unchecked. */
  signature?: Signature | null;
  agent: AgentView;
}

export type Signature = "valid" | "invalid" | "unsigned";

export interface AgentPage {
  revision: number;
  agents: Agent[];
  next_cursor: string | null;
}

export interface Instance {
  instance_id: string;
  lease_deadline: string;
  first_seen?: string | null;
  last_seen?: string | null;
}

/** `GET /v1/agents/{id}`. */
export interface AgentDetail extends Agent {
  instances: Instance[];
  registry_revision: number;
  lease?: { ttl_s: number; interval_s: number | null; idle_ttl_s: number | null };
}

/** The body of an `agent.joined|updated|left|deleted` event. */
export interface AgentEvent {
  agent_id: string;
  revision: number;
  status: Status;
  live_instances: number;
  reason: string;
  agent: AgentView;
  verified?: boolean | null;
  signature?: Signature | null;
}
