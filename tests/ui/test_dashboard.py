"""The dashboard at /ui/ in Chromium, against a real `agentroster up` and agents registered with
the real client: the table, filters, live status, an agent's card, markup as text, a restart,
a key where reads need one, and the stream cap shared with other readers.

Every wait is Playwright's `expect` on the page (it polls the DOM until the condition holds);
`TIMEOUT_MS` only guards against a hang.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from agentroster.client import Announcement, announce
from agentroster.settings import Settings
from tests.card_examples import MCP_STDIO_SERVER
from tests.helpers import (
    RunningProgram,
    cleanup_redis,
    free_port,
    registry_server,
    registry_server_on,
)
from tests.integration.agents import a2a_card
from tests.ui.conftest import PageWatch

pytestmark = pytest.mark.connected

#: Guards against a hang only (a restart, then the page's reconnection backoff of up to 10 s).
TIMEOUT_MS = 60_000
#: Short leases allowed and swept often, so an agent that stops is offline within seconds.
FAST = {"AGENTROSTER_TTL_MIN_S": "0.5", "AGENTROSTER_SWEEP_INTERVAL_S": "0.1"}
#: A card name that is markup; the page must show these characters and run nothing.
MARKUP = "<img src=x onerror=alert(1)>"


def row(page: Page, agent_id: str) -> Locator:
    """The table row of one agent."""
    return page.locator(f'#agents tr[data-agent-id="{agent_id}"]')


async def register(settings: Settings, card: dict[str, Any], agent_id: str) -> Announcement:
    """Register an instance once with the real client (a 60 s lease: alive for the test)."""
    return await announce(
        card, settings.broker_url, ttl_s=60, agent_id=agent_id, prefix=settings.prefix
    )


async def test_lists_agents_counts_them_and_filters_by_skill(
    settings: Settings, cleanup: None, page: Page, watch: PageWatch
) -> None:
    """Registered agents are listed and counted; a skill filter and a text search narrow the
    table to the agents that match, without asking the registry again; the page asks nothing
    of any other origin."""
    async with registry_server(settings) as registry:
        weather = await register(settings, a2a_card("Weather", skills=("forecast",)), "weather")
        echo = await register(settings, a2a_card("Echo", skills=("echo", "ping")), "echo")
        await page.goto(f"{registry.url}/ui/")
        await expect(row(page, "weather")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(row(page, "echo")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#count-live")).to_have_text("2")
        await expect(row(page, "echo").locator("td").nth(3)).to_have_text("echo, ping")
        await expect(row(page, "echo").locator("td").nth(4)).to_have_text("a2a/http")

        await page.get_by_label("Skills").fill("forecast")
        await expect(row(page, "echo")).to_have_count(0)
        await expect(row(page, "weather")).to_be_visible()
        await expect(page.locator("#match-count")).to_have_text("1 agent matches.")

        await page.get_by_label("Skills").fill("")
        await page.get_by_label("Search").fill("PIN")  # skill names, any case
        await expect(row(page, "weather")).to_have_count(0)
        await expect(row(page, "echo")).to_be_visible()
        await page.get_by_label("Search").fill("")
        await page.get_by_label("Skills").fill("forecast, echo")  # every one must match
        await expect(page.locator("#agents tbody")).to_have_text("No agent matches.")
        assert watch.errors == []
        assert [r.url for r in watch.requests if not r.url.startswith(f"{registry.url}/")] == []
        await weather.close()
        await echo.close()


async def test_label_tag_protocol_and_transport_filters_follow_the_registry_rules(
    settings: Settings, cleanup: None, page: Page
) -> None:
    """Labels match exactly; tags, protocols and transports in any case, as `GET /v1/agents`
    filters them; the status filter keeps only agents in that state."""
    queue_card = {
        "name": "Queued",
        "url": "amqp://broker/queued",
        "skills": [{"id": "batch", "name": "Batch", "tags": ["Nightly"]}],
    }
    async with registry_server(settings) as registry:
        queued = await announce(
            queue_card,
            settings.broker_url,
            ttl_s=60,
            agent_id="queued",
            labels={"team": "Data"},
            prefix=settings.prefix,
        )
        web = await register(settings, a2a_card("Web", skills=("chat",)), "web")
        await page.goto(f"{registry.url}/ui/")
        await expect(row(page, "queued")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(row(page, "web")).to_be_visible()

        checks = [
            ("Transport", "AMQP", "queued"),
            ("Protocol", "A2A", None),  # both speak a2a
            ("Tag", "nightly", "queued"),
            ("Labels", "team:Data", "queued"),
        ]
        for label, value, only in checks:
            await page.get_by_label(label).fill(value)
            await expect(row(page, "web")).to_have_count(0 if only == "queued" else 1)
            await expect(row(page, "queued")).to_have_count(1)
            await page.get_by_label(label).fill("")
        await page.get_by_label("Labels").fill("team:data")  # a label's value: exactly
        await expect(page.locator("#match-count")).to_have_text("0 agents match.")
        await page.get_by_label("Labels").fill("")
        await page.get_by_label("Status", exact=True).select_option("offline")
        await expect(page.locator("#match-count")).to_have_text("0 agents match.")
        await page.get_by_label("Status", exact=True).select_option("live")
        await expect(page.locator("#match-count")).to_have_text("2 agents match.")
        await page.get_by_label("Verified card").select_option("true")  # nobody asked: none
        await expect(page.locator("#match-count")).to_have_text("0 agents match.")
        await page.get_by_label("Verified card").select_option("")
        # a stdio-only MCP server has no endpoint: found by its card format's protocol
        local = await register(settings, copy.deepcopy(MCP_STDIO_SERVER), "local-mcp")
        await expect(row(page, "local-mcp")).to_be_visible(timeout=TIMEOUT_MS)
        await page.get_by_label("Protocol").fill("MCP")
        await expect(page.locator("#match-count")).to_have_text("1 agent matches.")
        await expect(row(page, "local-mcp")).to_have_count(1)
        await page.get_by_label("Protocol").fill("")
        await page.get_by_label("Card signature").select_option("unsigned")
        await expect(page.locator("#match-count")).to_have_text("3 agents match.")
        await page.get_by_label("Card signature").select_option("valid")
        await expect(page.locator("#match-count")).to_have_text("0 agents match.")
        await local.close()
        await queued.close()
        await web.close()


async def test_unknown_agent_and_malformed_addresses_are_told_not_thrown(
    settings: Settings, cleanup: None, page: Page, watch: PageWatch
) -> None:
    """An address naming no agent says so; one that is not valid percent-encoding shows the
    list; neither throws in the page."""
    async with registry_server(settings) as registry:
        await page.goto(f"{registry.url}/ui/#/agents/nobody")
        await expect(page.locator("#agent-error")).to_contain_text("nobody", timeout=TIMEOUT_MS)
        await page.goto(f"{registry.url}/ui/#/agents/%E0%A4%A")
        await expect(page.locator("#list-view")).to_be_visible()
        await expect(page.locator("#agent-view")).to_be_hidden()
        assert not [e for e in watch.errors if e.startswith("uncaught")]


async def test_agent_that_stops_heartbeating_turns_offline(
    settings: Settings, cleanup: None, page: Page
) -> None:
    """An agent process killed with -9 (no deregistration) goes offline on the open page once
    its lease expires, and the feed says why."""
    env = {
        **os.environ,
        "AGENTROSTER_BROKER_URL": settings.broker_url,
        "AGENTROSTER_PREFIX": settings.prefix,
    }
    card = orjson.dumps(a2a_card("Mortal", skills=("die",))).decode()
    async with (
        registry_server(settings, **FAST) as registry,
        RunningProgram.run(
            sys.executable, "-m", "tests.ui.beacon_process", card, "mortal", env=env
        ) as agent,
    ):
        await agent.wait_for_line(lambda line: line == "registered")
        await page.goto(f"{registry.url}/ui/")
        status = row(page, "mortal").locator(".badge")
        await expect(status).to_have_text("live", timeout=TIMEOUT_MS)

        agent.process.kill()
        await expect(status).to_have_text("offline", timeout=TIMEOUT_MS)
        await expect(page.locator("#count-offline")).to_have_text("1")
        await expect(page.locator("#count-live")).to_have_text("0")
        left = page.locator("#feed li.left").filter(has_text="mortal")
        await expect(left).to_contain_text("reason expired")


async def test_agent_page_shows_endpoints_instances_and_card_in_either_a2a_version(
    settings: Settings, cleanup: None, page: Page, watch: PageWatch
) -> None:
    """An agent's name opens its page from the keyboard: endpoints, its live instance, and its
    card pretty-printed as registered (A2A 1.0), then converted to 0.3 by the version switch."""
    weather_card = a2a_card("Weather", skills=("forecast",))
    legacy = {
        "url": "http://127.0.0.1:9/v03",
        "protocolBinding": "JSONRPC",
        "protocolVersion": "0.3",
    }
    weather_card["supportedInterfaces"].append(
        legacy
    )  # a v0.3 view lists only interfaces speaking 0.x
    async with registry_server(settings) as registry:
        weather = await register(settings, weather_card, "weather")
        await page.goto(f"{registry.url}/ui/")
        link = row(page, "weather").get_by_role("link", name="Weather")
        await link.focus()
        await page.keyboard.press("Enter")

        heading = page.locator("#agent-heading")
        await expect(heading).to_have_text("Weather", timeout=TIMEOUT_MS)
        await expect(heading).to_be_focused()
        await expect(page.locator("#agent-endpoints tbody")).to_contain_text(
            "http://127.0.0.1:9/Weather"
        )
        await expect(page.locator("#agent-instances tbody tr")).to_have_count(1)
        await expect(page.locator("#agent-instances tbody")).to_contain_text(weather.instance_id)
        card = page.locator("#card")
        await expect(card).to_contain_text('"supportedInterfaces": [')  # indented: pretty
        await expect(card).to_contain_text('"name": "Weather"')

        await page.get_by_label("A2A version").select_option("0.3")
        await expect(card).to_contain_text('"preferredTransport": "JSONRPC"')
        await expect(card).to_contain_text('"url": "http://127.0.0.1:9/v03"')
        await expect(card).not_to_contain_text("supportedInterfaces")

        await page.get_by_role("link", name="All agents").click()
        await expect(row(page, "weather")).to_be_visible()
        assert watch.errors == []
        await weather.close()


async def test_markup_in_a_card_is_shown_as_text_and_never_runs(
    settings: Settings, cleanup: None, page: Page, watch: PageWatch
) -> None:
    """A card whose name, description and skill are markup shows those characters in the
    table, on its page and in its card; no element is made of them, no dialog opens, and the
    page's Content-Security-Policy reports nothing."""
    card = {
        "name": MARKUP,
        "description": "<script>alert(2)</script>",
        "version": "1.0.0",
        "url": "http://127.0.0.1:9/xss",
        "skills": [{"id": "xss", "name": "<b onmouseover=alert(3)>bold</b>", "tags": []}],
    }
    async with registry_server(settings) as registry:
        hostile = await register(settings, card, "xss-card")
        await page.goto(f"{registry.url}/ui/")
        name = row(page, "xss-card").get_by_role("link")
        await expect(name).to_have_text(MARKUP, timeout=TIMEOUT_MS)
        await page.get_by_label("Search").fill("onmouseover")
        await expect(row(page, "xss-card")).to_be_visible()
        await name.click()
        await expect(page.locator("#agent-heading")).to_have_text(MARKUP, timeout=TIMEOUT_MS)
        await expect(page.locator("#agent-facts")).to_contain_text("<script>alert(2)</script>")
        await expect(page.locator("#card")).to_contain_text(f'"name": "{MARKUP}"')
        assert await page.locator("main img, main script, main b").count() == 0
        await page.locator("#agent-facts").hover()
        assert watch.dialogs == []
        assert watch.errors == []
        await hostile.close()


async def test_page_reconnects_after_a_restart_and_catches_up(
    settings: Settings, cleanup: None, page: Page
) -> None:
    """The registry stops; an agent registers meanwhile (its command waits in the queue); the
    registry starts again on the same address: the open page reconnects by itself and shows
    the agent, without a reload (the feed from before the restart is still there)."""
    port = free_port()
    async with registry_server_on(port, settings) as registry:
        first = await register(settings, a2a_card("First"), "first")
        await page.goto(f"{registry.url}/ui/")
        await expect(row(page, "first")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#connection")).to_contain_text("Live at revision")
    await expect(page.locator("#connection")).to_contain_text("Reconnecting", timeout=TIMEOUT_MS)
    late = await register(settings, a2a_card("Late"), "late")
    async with registry_server_on(port, settings):
        status = row(page, "late").locator(".badge")
        await expect(status).to_have_text("live", timeout=TIMEOUT_MS)
        await expect(page.locator("#count-live")).to_have_text("2")
        await expect(page.locator("#connection")).to_contain_text("Live at revision")
        await expect(page.locator("#feed li.joined").filter(has_text="late")).to_have_count(1)
        await late.close()
        await first.close()


async def test_page_lists_again_after_redis_lost_the_registry_data(
    settings: Settings, cleanup: None, page: Page
) -> None:
    """Redis loses the registry's keys (a restart without persistence); one agent registers
    again. The page cannot continue from its revision (410 or a revision jump), lists again,
    says so in the feed, and ends showing what the registry holds: the agent that came back."""
    async with registry_server(settings) as registry:
        kept = await register(settings, a2a_card("Kept"), "kept")
        lost = await register(settings, a2a_card("Lost"), "lost")
        await page.goto(f"{registry.url}/ui/")
        await expect(row(page, "lost")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(row(page, "kept")).to_be_visible()

        await cleanup_redis(settings.redis_url, settings.prefix)
        await kept.register()  # its periodic full registration
        await expect(row(page, "lost")).to_have_count(0, timeout=TIMEOUT_MS)
        await expect(row(page, "kept").locator(".badge")).to_have_text("live")
        await expect(page.locator("#feed li.note").first).to_contain_text(
            "Listed the registry again"
        )
        await expect(page.locator("#count-total")).to_have_text("1")
        await kept.close()
        await lost.close()


#: A bootstrap admin key of the test registry (any scope reads).
KEY = "ui-test-key-0123456789abcdef0123456789"


async def test_page_asks_for_a_key_where_reads_need_one_and_sends_it_as_a_header(
    settings: Settings, cleanup: None, page: Page, watch: PageWatch
) -> None:
    """With AGENTROSTER_READ_REQUIRES_KEY the page asks for a key, says when the registry
    refuses one, and with a good one lists and follows; the key travels in the Authorization
    header and never in a URL."""
    async with registry_server(
        settings, AGENTROSTER_READ_REQUIRES_KEY="true", AGENTROSTER_BOOTSTRAP_ADMIN_KEY=KEY
    ) as registry:
        private = await register(settings, a2a_card("Private"), "private")
        await page.goto(f"{registry.url}/ui/")
        key = page.get_by_label("API key")
        await expect(key).to_be_focused(timeout=TIMEOUT_MS)
        await key.fill("not-the-key-but-long-enough-0000000000")
        await key.press("Enter")
        await expect(page.locator("#key-reason")).to_contain_text(
            "The registry refused the key", timeout=TIMEOUT_MS
        )
        await key.fill(KEY)
        await page.get_by_role("button", name="Use this key").click()
        await expect(page.locator("#key-form")).to_be_hidden()
        await expect(row(page, "private")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#connection")).to_contain_text("Live at revision")

        await row(page, "private").get_by_role("link").click()
        await expect(page.locator("#card")).to_contain_text('"name": "Private"')

        assert not [r.url for r in watch.requests if KEY in r.url]
        streams = [r for r in watch.requests if "/v1/events" in r.url]
        assert streams
        assert (await streams[-1].all_headers())["authorization"] == f"Bearer {KEY}"
        await private.close()


@pytest.fixture
async def second_page(browser: Browser) -> AsyncIterator[Page]:
    """Another reader's page, in a context of its own."""
    context = await browser.new_context()
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def test_a_page_over_the_stream_cap_waits_and_the_others_stay_live(
    settings: Settings, cleanup: None, page: Page, second_page: Page
) -> None:
    """With one event stream allowed per API process, a second page still lists the agents,
    says why it is not live and waits (Retry-After) instead of hammering; the first page keeps
    receiving changes."""
    async with registry_server(settings, AGENTROSTER_SSE_MAX_STREAMS="1") as registry:
        one = await register(settings, a2a_card("One"), "one")
        await page.goto(f"{registry.url}/ui/")
        await expect(page.locator("#connection")).to_contain_text(
            "Live at revision", timeout=TIMEOUT_MS
        )
        await second_page.goto(f"{registry.url}/ui/")
        await expect(row(second_page, "one")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(second_page.locator("#connection")).to_contain_text(
            "503 too-many-streams", timeout=TIMEOUT_MS
        )
        two = await register(settings, a2a_card("Two"), "two")
        await expect(row(page, "two")).to_be_visible(timeout=TIMEOUT_MS)
        await one.close()
        await two.close()


async def test_narrow_screen_has_no_sideways_scrolling(
    settings: Settings, cleanup: None, browser: Browser
) -> None:
    """On a 360 px wide screen the table rows become cards and the page does not overflow."""
    async with registry_server(settings) as registry:
        long = await register(settings, a2a_card("A-rather-long-agent-name" * 3), "long")
        context = await browser.new_context(viewport={"width": 360, "height": 740})
        narrow = await context.new_page()
        try:
            await narrow.goto(f"{registry.url}/ui/")
            await expect(row(narrow, "long")).to_be_visible(timeout=TIMEOUT_MS)
            overflow = await narrow.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0
        finally:
            await context.close()
        await long.close()
