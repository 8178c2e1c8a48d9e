package io.vlmbatch.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.vlmbatch.testsupport.RabbitBroker;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.rabbit.connection.CachingConnectionFactory;
import org.springframework.amqp.rabbit.connection.CorrelationData;
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
            cf.setPublisherConfirmType(CachingConnectionFactory.ConfirmType.CORRELATED);
            try {
                Queue queue = PartitionQueue.declare(new MockEnvironment().withProperty("vlm.worker.queue", "vlm.test-partitions"));
                new RabbitAdmin(cf).declareQueue(queue);
                RabbitTemplate template = new RabbitTemplate(cf);
                template.setMessageConverter(new PartitionRequestConverter(Set.of("infer-worker")));
                // as the manager does: a request is sent once the broker confirms it (a request still in flight
                // when the broker stops is not the broker's to keep; the manager's send fails instead)
                for (long id = 1; id <= 3; id++) {
                    CorrelationData confirm = new CorrelationData(Long.toString(id));
                    template.convertAndSend("", queue.getName(), new StepExecutionRequest("infer-worker", id), confirm);
                    assertThat(confirm.getFuture().get(10, TimeUnit.SECONDS).ack()).as("broker confirmed request %d", id).isTrue();
                }

                broker.restart();

                // basic.get polled to a deadline: the connection comes back some time after the restart
                for (long id = 1; id <= 3; id++) {
                    StepExecutionRequest r = null;
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                    while (r == null && System.nanoTime() < deadline) {
                        r = (StepExecutionRequest) template.receiveAndConvert(queue.getName());
                        if (r == null) Thread.sleep(100);
                    }
                    assertThat(r).as("request %d after the restart", id).isNotNull();
                    assertThat(r.getStepExecutionId()).isEqualTo(id);
                }
                assertThat(new RabbitAdmin(cf).getQueueInfo(queue.getName()).getMessageCount()).isZero();
            } catch (Throwable t) {
                System.err.println(broker.logs());
                throw t;
            } finally {
                cf.destroy();
            }
        }
    }
}
