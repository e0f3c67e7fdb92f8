// Parse captured events with the Go models Modelina generated (encoding/json tags).
// Usage: go run . EVENTS_JSON. Each event is {"headers", "body", "revision", "status"}: the
// body as it came off the wire, its revision in decimal and its status, read by the test from
// the JSON.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"check/generated"
)

type captured struct {
	Headers  json.RawMessage `json:"headers"`
	Body     string          `json:"body"`
	Revision string          `json:"revision"`
	Status   string          `json:"status"`
}

// strict decodes raw into v; a wire field the models do not have is an error.
func strict(raw []byte, v any) error {
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.DisallowUnknownFields()
	return decoder.Decode(v)
}

func fail(n int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "event %d: %s\n", n, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(-1, "%v", err)
	}
	var items []captured
	if err := json.Unmarshal(raw, &items); err != nil {
		fail(-1, "%v", err)
	}
	for n, item := range items {
		var event generated.AgentEvent
		if err := strict([]byte(item.Body), &event); err != nil {
			fail(n, "body: %v", err)
		}
		var headers generated.CloudEventsHeaders
		if err := strict(item.Headers, &headers); err != nil {
			fail(n, "headers: %v", err)
		}
		expected, err := strconv.ParseInt(item.Revision, 10, 64)
		if err != nil {
			fail(n, "%v", err)
		}
		var revision int64 = event.Revision // a compile error unless the model says int64
		if revision != expected {
			fail(n, "revision %d, the JSON says %d", revision, expected)
		}
		if header, err := strconv.ParseInt(headers.CloudEventsRevision, 10, 64); err != nil || header != expected {
			fail(n, "cloudEvents_revision %q != %d", headers.CloudEventsRevision, expected)
		}
		// Modelina's enums map an unknown value to the first one: compare with the JSON's
		if event.Status == nil || event.Status.Value() != item.Status {
			fail(n, "status %v, the JSON says %s", event.Status, item.Status)
		}
		if headers.CloudEventsSubject != event.AgentId {
			fail(n, "subject %s != %s", headers.CloudEventsSubject, event.AgentId)
		}
	}
	fmt.Printf("go: parsed %d events\n", len(items))
}
