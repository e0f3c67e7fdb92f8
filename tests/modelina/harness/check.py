"""Parse captured events with the Python models Modelina generated (pydantic preset).

Usage: python check.py GENERATED_DIR EVENTS_JSON. Each event is {"headers", "body", "revision",
"status"}: the body as it came off the wire, its revision in decimal and its status, read by
the test from the JSON.
"""

import importlib
import json
import sys

INT64 = range(-(2**63), 2**63)


def main(generated: str, events: str) -> None:
    """Parse every event, headers and body; exit with a message at the first mismatch."""
    sys.path.insert(0, generated)  # the models import each other as `asyncapimodels.*`
    agent_event = importlib.import_module("asyncapimodels.agent_event").AgentEvent
    cloud_events = importlib.import_module("asyncapimodels.cloud_events_headers")
    with open(events, encoding="utf-8") as file:
        captured = json.load(file)
    for n, item in enumerate(captured):
        event = agent_event.model_validate_json(item["body"])
        headers = cloud_events.CloudEventsHeaders.model_validate(item["headers"])
        expected = int(item["revision"])
        if event.revision != expected or event.revision not in INT64:
            sys.exit(f"event {n}: revision {event.revision}, the JSON says {expected}")
        if int(headers.cloud_events_revision) != expected:
            sys.exit(f"event {n}: cloudEvents_revision {headers.cloud_events_revision}")
        if event.status.value != item["status"]:
            sys.exit(f"event {n}: status {event.status}, the JSON says {item['status']}")
        if headers.cloud_events_subject != event.agent_id:
            sys.exit(f"event {n}: subject {headers.cloud_events_subject} != {event.agent_id}")
    print(f"python: parsed {len(captured)} events")


if __name__ == "__main__":
    main(*sys.argv[1:3])
