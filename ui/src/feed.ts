// The feed of recent events: what changed, for which agent, and why.

import { byId, h, when } from "./dom";
import type { Applied } from "./roster";
import { agentHref } from "./table";

/** Events kept in the feed, newest first. */
export const FEED_SIZE = 50;

/** Add one applied event at the top of the feed. */
export function feedEvent(change: Applied): void {
  const { event } = change;
  add(
    h(
      "li",
      { class: `event ${change.kind}` },
      h("time", { datetime: change.receivedAt.toISOString() }, when(change.receivedAt.toISOString())),
      " ",
      h("strong", {}, change.kind),
      " ",
      h("a", { href: agentHref(event.agent_id) }, event.agent.name || event.agent_id),
      ` (${event.agent_id}): ${event.status}, ${event.live_instances} live; reason ${event.reason}`,
      h("span", { class: "revision" }, ` · revision ${event.revision}`),
    ),
  );
}

/** Add a note of the page's own (a new list and why). */
export function feedNote(text: string): void {
  add(h("li", { class: "note" }, h("time", {}, when(new Date().toISOString())), " ", text));
}

function add(item: HTMLLIElement): void {
  const feed = byId("feed", HTMLOListElement);
  feed.insertBefore(item, feed.firstChild);
  while (feed.children.length > FEED_SIZE) feed.lastElementChild?.remove();
}
