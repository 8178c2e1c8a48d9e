package io.vlmbatch.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.RabbitBroker;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.rabbit.connection.CachingConnectionFactory;
import org.springframework.amqp.rabbit.core.RabbitAdmin;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.batch.integration.partition.StepExecutionRequest;
import org.springframework.mock.env.MockEnvironment;

/** The workers' queue on a real RabbitMQ: requests survive a broker restart (durable queue, persistent messages). */
class PartitionQueueIT {

    @Test
    void requestsSurviveABrokerRestart(@TempDir Path dir) throws Exception {
        try (RabbitBroker broker = RabbitBroker.start(dir.resolve("rabbit"))) {
            CachingConnectionFactory cf = new CachingConnectionFactory("127.0.0.1", broker.port());
            try {
                Queue queue = PartitionQueue.declare(new MockEnvironment().withProperty("vlm.worker.queue", "vlm.test-partitions"));
                new RabbitAdmin(cf).declareQueue(queue);
                RabbitTemplate template = new RabbitTemplate(cf);
                template.setMessageConverter(new PartitionRequestConverter(Set.of("infer-worker")));
                for (long id = 1; id <= 3; id++) template.convertAndSend(queue.getName(), new StepExecutionRequest("infer-worker", id));

                broker.restart();

                // basic.get polled to a deadline: a timed receive() (a short-lived consumer) once came back empty
                // for the second message in CI; polling does not depend on a consumer's prefetch or cancel timing
                for (long id = 1; id <= 3; id++) {
                    StepExecutionRequest r = null;
                    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
                    while (r == null && System.nanoTime() < deadline) {
                        r = (StepExecutionRequest) template.receiveAndConvert(queue.getName());
                        if (r == null) Thread.sleep(100);
                    }
                    assertThat(r).as("request %d after the restart", id).isNotNull();
                    assertThat(r.getStepExecutionId()).isEqualTo(id);
                }
                assertThat(new RabbitAdmin(cf).getQueueInfo(queue.getName()).getMessageCount()).isZero();
            } finally {
                cf.destroy();
            }
        }
    }
}
