package io.vlmbatch.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.springframework.amqp.core.Message;
import org.springframework.amqp.core.MessageDeliveryMode;
import org.springframework.amqp.core.MessageProperties;
import org.springframework.amqp.support.converter.MessageConversionException;
import org.springframework.batch.integration.partition.StepExecutionRequest;

class PartitionRequestConverterTest {
    private final PartitionRequestConverter converter = new PartitionRequestConverter(Set.of("infer-worker"));

    private StepExecutionRequest read(String body) {
        return converter.fromMessage(new Message(body.getBytes(StandardCharsets.UTF_8), new MessageProperties()));
    }

    @Test
    void aRequestTravelsAsPersistentJsonAndComesBackTheSame() {
        Message m = converter.toMessage(new StepExecutionRequest("infer-worker", 42L), new MessageProperties());
        assertThat(new String(m.getBody(), StandardCharsets.UTF_8)).isEqualTo("{\"step\":\"infer-worker\",\"stepExecutionId\":42}");
        assertThat(m.getMessageProperties().getDeliveryMode()).isEqualTo(MessageDeliveryMode.PERSISTENT);
        StepExecutionRequest back = converter.fromMessage(m);
        assertThat(back.getStepName()).isEqualTo("infer-worker");
        assertThat(back.getStepExecutionId()).isEqualTo(42L);
    }

    @Test
    void anythingElseOnTheQueueIsRefusedNotRun() {
        for (String hostile : new String[] {
                "",
                "not json",
                "[1, 2]",
                "{\"step\":\"infer-worker\"}",
                "{\"step\":\"discover\",\"stepExecutionId\":1}",
                "{\"step\":\"infer-worker\",\"stepExecutionId\":-5}",
                "{\"step\":\"infer-worker\",\"stepExecutionId\":0}",
                "{\"step\":\"infer-worker\",\"stepExecutionId\":1.5}",
                "{\"step\":\"infer-worker\",\"stepExecutionId\":\"7; DROP TABLE vlm_result\"}",
                "{\"step\":\"infer-worker\",\"stepExecutionId\":99999999999999999999999}",
                "{\"step\":[\"infer-worker\"],\"stepExecutionId\":1}",
                "{\"step\":\"infer-worker\",\"stepExecutionId\":1,\"extra\":true}",
                "{\"step\":\"" + "x".repeat(5000) + "\",\"stepExecutionId\":1}",
                "\u00ac\u00ed\u0000\u0005sr\u0000" // the start of a Java serialization stream
        }) {
            assertThatThrownBy(() -> read(hostile)).as(hostile.length() > 60 ? hostile.substring(0, 60) : hostile)
                    .isInstanceOf(MessageConversionException.class);
        }
        assertThatThrownBy(() -> converter.toMessage("a string", new MessageProperties())).isInstanceOf(MessageConversionException.class);
    }
}
