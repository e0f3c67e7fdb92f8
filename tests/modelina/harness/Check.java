// Parse captured events with the Java models Modelina generated (Jackson preset).
// Usage: java Check EVENTS_JSON. Each event is {"headers", "body", "revision", "status"}: the
// body as it came off the wire, its revision in decimal and its status, read by the test from
// the JSON.
import agentroster.generated.AgentEvent;
import agentroster.generated.CloudEventsHeaders;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.module.SimpleModule;
import java.io.File;
import java.io.IOException;
import java.time.OffsetDateTime;

public class Check {
  public static void main(String[] args) throws Exception {
    // strict: a wire field the models do not have is an error, not silently dropped
    ObjectMapper mapper =
        new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .registerModule(new SimpleModule().addDeserializer(OffsetDateTime.class, new Rfc3339()));
    JsonNode captured = mapper.readTree(new File(args[0]));
    int n = 0;
    for (JsonNode item : captured) {
      AgentEvent event = mapper.readValue(item.get("body").asText(), AgentEvent.class);
      CloudEventsHeaders headers = mapper.treeToValue(item.get("headers"), CloudEventsHeaders.class);
      long expected = Long.parseLong(item.get("revision").asText());
      if (event.getRevision() != expected) {
        fail(n, "revision " + event.getRevision() + ", the JSON says " + expected);
      }
      if (Long.parseLong(headers.getCloudEventsRevision()) != expected) {
        fail(n, "cloudEvents_revision " + headers.getCloudEventsRevision() + " != " + expected);
      }
      if (!event.getStatus().getValue().equals(item.get("status").asText())) {
        fail(n, "status " + event.getStatus() + ", the JSON says " + item.get("status"));
      }
      if (!headers.getCloudEventsSubject().equals(event.getAgentId())) {
        fail(n, "subject " + headers.getCloudEventsSubject() + " != " + event.getAgentId());
      }
      n++;
    }
    System.out.println("java: parsed " + n + " events");
  }

  /**
   * `format: date-time` is an OffsetDateTime in the models. Applications register Jackson's
   * jackson-datatype-jsr310 module for it; Debian does not package that module, so this is the
   * reading part of it.
   */
  static final class Rfc3339 extends StdDeserializer<OffsetDateTime> {
    Rfc3339() {
      super(OffsetDateTime.class);
    }

    @Override
    public OffsetDateTime deserialize(JsonParser parser, DeserializationContext context)
        throws IOException {
      return OffsetDateTime.parse(parser.getValueAsString());
    }
  }

  private static void fail(int n, String message) {
    System.err.println("event " + n + ": " + message);
    System.exit(1);
  }
}
