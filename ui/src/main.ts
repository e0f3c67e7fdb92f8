// The dashboard: the agents table with filters and counts, one agent's page, the event feed,
// all kept current by the page's LiveRoster (list + watch). Routes live in the fragment:
// `#/` the list, `#/agents/<id>` one agent.

import "./style.css";
import { drawAgent, drawCard } from "./agent";
import { Api, ApiError } from "./api";
import { byId } from "./dom";
import { feedEvent, feedNote } from "./feed";
import { type Filters, readFilters } from "./filters";
import { type Connection, LiveRoster } from "./roster";
import { drawCounts, drawTable } from "./table";

const api = new Api();
const filtersForm = byId("filters", HTMLFormElement);
let filters: Filters = readFilters(filtersForm);
let shownAgent: string | null = null;
let drawPending = false;
let agentStale = false;

const roster = new LiveRoster(api, {
  listed(why) {
    if (roster.lists > 1) feedNote(`Listed the registry again (${why}).`);
    agentStale = true;
    scheduleDraw();
  },
  applied(change) {
    feedEvent(change);
    if (change.event.agent_id === shownAgent) agentStale = true;
    scheduleDraw();
  },
  connection: showConnection,
  needKey: askForKey,
});

/** Draw at most once per turn of the event loop, however many events arrived. */
function scheduleDraw(): void {
  if (drawPending) return;
  drawPending = true;
  setTimeout(() => {
    drawPending = false;
    drawCounts(roster.agents.values());
    drawTable(roster.agents.values(), filters);
    if (agentStale && shownAgent !== null) {
      agentStale = false;
      void drawAgent(api, shownAgent);
    }
  }, 0);
}

function showConnection(state: Connection): void {
  const line = byId("connection", HTMLParagraphElement);
  line.dataset.phase = state.phase;
  switch (state.phase) {
    case "listing":
      line.textContent = "Listing the agents…";
      break;
    case "live":
      line.textContent = `Live at revision ${state.revision}`;
      break;
    case "waiting":
      line.textContent = `Reconnecting in ${Math.ceil(state.retryInMs / 1000)} s: ${state.why}`;
      break;
    case "key":
      line.textContent = "Waiting for an API key";
      break;
  }
}

/** Show the key form; resolve once the reader submitted a key. */
function askForKey(error: ApiError): Promise<void> {
  const form = byId("key-form", HTMLFormElement);
  const input = byId("key-input", HTMLInputElement);
  byId("key-reason", HTMLParagraphElement).textContent = api.hasKey
    ? `The registry refused the key: ${error.message}`
    : error.message;
  form.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener(
      "submit",
      (submitted) => {
        submitted.preventDefault();
        api.setKey(input.value.trim());
        input.value = "";
        form.hidden = true;
        resolve();
      },
      { once: true },
    );
  });
}

/** Show the page the fragment names. */
function route(): void {
  const match = /^#\/agents\/([^/]+)$/.exec(location.hash);
  const listView = byId("list-view", HTMLElement);
  const agentView = byId("agent-view", HTMLElement);
  const agentId = match?.[1] === undefined ? null : decoded(match[1]);
  if (agentId !== null) {
    shownAgent = agentId;
    listView.hidden = true;
    agentView.hidden = false;
    byId("agent-heading", HTMLHeadingElement).focus();
    void drawAgent(api, shownAgent);
  } else {
    const wasAgent = shownAgent !== null;
    shownAgent = null;
    agentView.hidden = true;
    listView.hidden = false;
    if (wasAgent) byId("agents-heading", HTMLHeadingElement).focus();
  }
}

/** A fragment part decoded, or null when it is not valid percent-encoding. */
function decoded(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

filtersForm.addEventListener("input", () => {
  filters = readFilters(filtersForm);
  scheduleDraw();
});
filtersForm.addEventListener("submit", (submitted) => submitted.preventDefault());
byId("card-version", HTMLSelectElement).addEventListener("change", () => {
  if (shownAgent !== null) void drawCard(api, shownAgent);
});
window.addEventListener("hashchange", route);
route();
void roster.run();
