package io.vlmbatch.worker;

import java.nio.charset.StandardCharsets;
import java.util.Set;
import org.springframework.amqp.core.Message;
import org.springframework.amqp.core.MessageDeliveryMode;
import org.springframework.amqp.core.MessageProperties;
import org.springframework.amqp.support.converter.MessageConversionException;
import org.springframework.amqp.support.converter.MessageConverter;
import org.springframework.batch.integration.partition.StepExecutionRequest;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The wire form of a partition request on the broker: {"step": "infer-worker", "stepExecutionId": 42}, sent
 * persistent. Plain JSON rather than Java serialization, so a worker never deserializes objects from the
 * broker; anything else on the queue (wrong shape, too large, unknown step) is refused as unconvertible and
 * dropped by the listener (the manager sends a partition again when no worker took it).
 */
public final class PartitionRequestConverter implements MessageConverter {
    static final int MAX_BYTES = 1024;
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private final Set<String> steps;

    /** @param steps the step names a worker runs; requests for any other are refused */
    public PartitionRequestConverter(Set<String> steps) {
        this.steps = Set.copyOf(steps);
    }

    @Override
    public Message toMessage(Object object, MessageProperties properties) {
        if (!(object instanceof StepExecutionRequest r)) {
            throw new MessageConversionException("not a partition request: " + (object == null ? "null" : object.getClass().getName()));
        }
        String body = JSON.createObjectNode().put("step", r.getStepName()).put("stepExecutionId", r.getStepExecutionId()).toString();
        properties.setContentType(MessageProperties.CONTENT_TYPE_JSON);
        properties.setContentEncoding("UTF-8");
        properties.setDeliveryMode(MessageDeliveryMode.PERSISTENT);
        return new Message(body.getBytes(StandardCharsets.UTF_8), properties);
    }

    @Override
    public StepExecutionRequest fromMessage(Message message) {
        byte[] body = message.getBody();
        if (body == null || body.length == 0) throw new MessageConversionException("empty partition request");
        if (body.length > MAX_BYTES) throw new MessageConversionException("partition request of " + body.length + " bytes (at most " + MAX_BYTES + ")");
        JsonNode node;
        try {
            node = JSON.readTree(body);
        } catch (JacksonException e) {
            throw new MessageConversionException("partition request is not JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject() || node.size() != 2) {
            throw new MessageConversionException("partition request must be {\"step\": ..., \"stepExecutionId\": ...}");
        }
        JsonNode step = node.get("step");
        JsonNode id = node.get("stepExecutionId");
        if (step == null || !step.isString() || !steps.contains(step.asString())) {
            throw new MessageConversionException("partition request names no step this worker runs (it runs " + steps + ")");
        }
        if (id == null || !id.canConvertToExactIntegral() || !id.canConvertToLong() || id.asLong() <= 0) {
            throw new MessageConversionException("partition request's stepExecutionId must be a positive whole number");
        }
        return new StepExecutionRequest(step.asString(), id.asLong());
    }
}
