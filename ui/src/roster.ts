// The page's live copy of the registry: the list + watch of `Roster`
// (src/agentroster/client/roster.py), in the browser.
//
// List every agent (`GET /v1/agents?status=all`, every page) at revision R, then follow the
// events after R (`GET /v1/events?since=R` with `Last-Event-ID: R`), read with fetch so that a
// key can travel as a header. Events are applied in revision order, each once; a revision that
// skips, an event the page cannot read, or a 410 (`events-expired`: the events needed are no
// longer kept; `revision-ahead`: the registry lost its data) makes it list again. A stream
// that ends or breaks is reopened after the last revision applied, at once if it delivered
// events, else after a growing delay with jitter (the API's `Retry-After` when it gives one).

import { Api, ApiError } from "./api";
import type { Agent, AgentEvent, AgentPage } from "./model";
import { SseTooLarge, sseEvents } from "./sse";

/** The API pings idle streams every 15 s: three missed pings mean the connection is dead. */
export const IDLE_TIMEOUT_MS = 45_000;
/** The first reconnection delay; it doubles per failure up to `BACKOFF_MAX_MS`. */
export const BACKOFF_BASE_MS = 100;
export const BACKOFF_MAX_MS = 10_000;
/** Agents per list page (the API's maximum). */
export const PAGE_SIZE = 1000;
/** Event reasons that come from a command the registry just applied: the agent was heard. */
const HEARD = new Set(["registered", "card-changed", "woke"]);

/** What the page shows about its connection. */
export type Connection =
  | { phase: "listing" }
  | { phase: "live"; revision: number }
  | { phase: "waiting"; retryInMs: number; why: string }
  | { phase: "key"; why: string };

/** One applied event, for the feed. */
export interface Applied {
  kind: string;
  event: AgentEvent;
  receivedAt: Date;
}

/** What the copy tells the page. */
export interface RosterListener {
  /** The content was replaced by a new list (`why`: the first list, or why it listed again). */
  listed(why: string): void;
  /** One event was applied. */
  applied(change: Applied): void;
  /** The connection changed. */
  connection(state: Connection): void;
  /** The registry asks for a key: resolve once the reader gave one. */
  needKey(error: ApiError): Promise<void>;
}

class Relist extends Error {}
class BadEvent extends Error {}

export class LiveRoster {
  /** Every agent of the registry, whatever its status, by id. */
  readonly agents = new Map<string, Agent>();
  /** The registry revision the copy is at. */
  revision = 0;
  /** Lists made (1 after the first). */
  lists = 0;
  /** Per listed agent, its record's revision: older events for it are already in the list. */
  private listed = new Map<string, number>();
  private listTop = 0;

  constructor(
    private readonly api: Api,
    private readonly listener: RosterListener,
  ) {}

  /** List and follow, forever. */
  async run(): Promise<never> {
    let mustList = true;
    let failures = 0;
    let why = "first list";
    for (;;) {
      let retryAfterMs: number | null = null;
      try {
        if (mustList) {
          await this.list(why);
          mustList = false;
        }
        failures = (await this.follow()) ? 0 : failures + 1;
        why = "the event stream ended";
      } catch (error) {
        failures += 1;
        if (error instanceof Relist || error instanceof BadEvent || error instanceof SseTooLarge) {
          mustList = true;
          why = error.message;
        } else if (error instanceof ApiError && error.needsKey) {
          this.listener.connection({ phase: "key", why: error.message });
          await this.listener.needKey(error);
          failures = 0;
          continue;
        } else if (error instanceof ApiError) {
          why = `${error.status} ${error.code}: ${error.message}`;
          if (error.retryAfterS !== null) retryAfterMs = error.retryAfterS * 1000;
        } else {
          why = "the registry is unreachable";
        }
      }
      if (failures > 0) {
        const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1));
        const delay = retryAfterMs ?? cap * (0.5 + Math.random() / 2);
        this.listener.connection({ phase: "waiting", retryInMs: delay, why });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Read every page; replace the copy; follow from the first page's revision. */
  private async list(why: string): Promise<void> {
    this.listener.connection({ phase: "listing" });
    const agents: Agent[] = [];
    let cursor: string | null = null;
    let first: number | null = null;
    let top = 0;
    for (;;) {
      const params = new URLSearchParams({ status: "all", limit: String(PAGE_SIZE) });
      if (cursor !== null) params.set("cursor", cursor);
      const page: AgentPage = await this.api.json<AgentPage>(`/v1/agents?${params}`);
      if (page.revision < top) throw new Relist(`the revision went back from ${top} to ${page.revision}`);
      first ??= page.revision;
      top = page.revision;
      agents.push(...page.agents);
      if (page.next_cursor === null) break;
      if (cursor !== null && page.next_cursor <= cursor) throw new Error("the API's cursor did not advance");
      cursor = page.next_cursor;
    }
    this.agents.clear();
    this.listed.clear();
    for (const agent of agents) {
      this.agents.set(agent.agent_id, agent);
      this.listed.set(agent.agent_id, agent.revision);
    }
    this.listTop = agents.reduce((max, agent) => Math.max(max, agent.revision), first);
    this.revision = first;
    this.lists += 1;
    this.listener.listed(why);
  }

  /** Apply the events after the copy's revision until the stream ends; whether any came. */
  private async follow(): Promise<boolean> {
    const since = this.revision;
    const abort = new AbortController();
    let idle = setTimeout(() => abort.abort(), IDLE_TIMEOUT_MS);
    const alive = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(), IDLE_TIMEOUT_MS);
    };
    let received = false;
    try {
      let response: Response;
      try {
        response = await this.api.get(
          `/v1/events?since=${since}`,
          { Accept: "text/event-stream", "Last-Event-ID": String(since) },
          abort.signal,
        );
      } catch (error) {
        if (error instanceof ApiError && error.status === 410) throw new Relist(error.message);
        throw error;
      }
      if (response.body === null) return false;
      this.listener.connection({ phase: "live", revision: this.revision });
      for await (const sse of sseEvents(response.body, alive)) {
        const revision = sse.id === null || sse.id === "" ? NaN : Number(sse.id);
        if (!Number.isSafeInteger(revision)) throw new BadEvent(`an event without a revision id: ${sse.id}`);
        if (this.apply(revision, sse.event, sse.data)) {
          received = true;
          this.listener.connection({ phase: "live", revision: this.revision });
        }
      }
      return received;
    } finally {
      clearTimeout(idle);
      abort.abort(); // whatever ended the loop, the connection is not read any more
    }
  }

  /** Apply one event unless already applied; whether it was new. */
  private apply(revision: number, kind: string, data: string): boolean {
    if (revision <= this.revision) return false; // a replay overlapping what the copy has
    if (revision !== this.revision + 1) {
      throw new Relist(`revision ${this.revision} was followed by ${revision}`);
    }
    let event: AgentEvent;
    try {
      event = JSON.parse(data) as AgentEvent;
    } catch {
      throw new BadEvent(`the ${kind} event at revision ${revision} is not JSON`);
    }
    if (typeof event !== "object" || event === null || typeof event.agent_id !== "string") {
      throw new BadEvent(`the ${kind} event at revision ${revision} has no agent`);
    }
    if (event.revision !== revision) {
      throw new BadEvent(`event id ${revision} carries revision ${event.revision}`);
    }
    this.revision = revision;
    const id = event.agent_id;
    if (this.listed.size > 0 && revision > this.listTop) this.listed.clear();
    const listedAt = this.listed.get(id);
    if (listedAt !== undefined && listedAt >= revision) return true; // already in the list
    this.listed.delete(id);
    const name = kind.replace(/^agent\./, "");
    if (name === "deleted") {
      this.agents.delete(id);
    } else {
      const before = this.agents.get(id);
      this.agents.set(id, {
        ...before,
        agent_id: id,
        status: event.status,
        revision,
        live_instances: event.live_instances,
        verified: event.verified ?? null,
        signature: event.signature ?? null,
        agent: event.agent,
        // events carry no time: one caused by a command means the agent was just heard
        last_seen: HEARD.has(event.reason) ? new Date().toISOString() : before?.last_seen,
      });
    }
    this.listener.applied({ kind: name, event, receivedAt: new Date() });
    return true;
  }
}
