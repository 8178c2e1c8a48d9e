package io.vlmbatch.config;

import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.worker.PartitionQueue;
import io.vlmbatch.worker.PartitionRequestConverter;
import io.vlmbatch.worker.WatchedPartitionHandler;
import io.vlmbatch.worker.WorkerStore;
import java.time.Duration;
import java.util.Set;
import org.springframework.amqp.core.AmqpAdmin;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.core.QueueInformation;
import org.springframework.amqp.rabbit.connection.ConnectionFactory;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.batch.core.partition.PartitionHandler;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.boot.amqp.autoconfigure.RabbitAutoConfiguration;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.integration.amqp.dsl.Amqp;
import org.springframework.integration.channel.DirectChannel;
import org.springframework.integration.config.EnableIntegration;
import org.springframework.integration.core.MessagingTemplate;
import org.springframework.integration.dsl.IntegrationFlow;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The manager's half of remote partitioning (run.workers: remote): partition requests go from a channel
 * through Spring Integration AMQP to the workers' queue on RabbitMQ (spring.rabbitmq.* / SPRING_RABBITMQ_*
 * name the broker), and RemotePartitions makes the partition handler of a run. Nothing connects to the
 * broker until a remote run sends its first request.
 */
@Configuration(proxyBeanMethods = false)
@EnableIntegration
@ImportAutoConfiguration(RabbitAutoConfiguration.class)
public class RemotePartitioningConfig {

    /** Makes the partition handler of a remote run. */
    public record RemotePartitions(WorkerStore store, JobRepository repository, MessagingTemplate requests, AmqpAdmin admin,
                                   Queue queue, Duration pollInterval) {
        public PartitionHandler handler(JobDefinition def) throws Exception {
            WatchedPartitionHandler h = new WatchedPartitionHandler(store, repository, requests, InferWorkerConfig.STEP,
                    def.run().workerTimeout(), def.run().partitions(), pollInterval, this::queued);
            h.afterPropertiesSet();
            return h;
        }

        private long queued() {
            QueueInformation info = admin.getQueueInfo(queue.getName());
            return info == null ? -1 : info.getMessageCount();
        }
    }

    static final long CONFIRM_TIMEOUT_MS = 10_000;

    @Bean
    Queue vlmPartitionQueue(Environment env) {
        return PartitionQueue.declare(env);
    }

    @Bean
    DirectChannel partitionRequests() {
        return new DirectChannel();
    }

    @Bean
    IntegrationFlow partitionRequestsToBroker(DirectChannel partitionRequests, ConnectionFactory connectionFactory, Queue vlmPartitionQueue) {
        RabbitTemplate template = new RabbitTemplate(connectionFactory);
        template.setMessageConverter(new PartitionRequestConverter(Set.of(InferWorkerConfig.STEP)));
        return IntegrationFlow.from(partitionRequests)
                .handle(Amqp.outboundAdapter(template).routingKey(vlmPartitionQueue.getName())
                        // a request counts as sent once the broker confirms it holds it: a broker stopping
                        // mid-send fails the send here instead of dropping the request unseen
                        .confirmCorrelationExpression("payload").waitForConfirm(true).confirmTimeout(CONFIRM_TIMEOUT_MS))
                .get();
    }

    @Bean
    RemotePartitions remotePartitions(JdbcTemplate jdbc, PlatformTransactionManager tm, JobRepository repository,
                                      DirectChannel partitionRequests, AmqpAdmin admin, Queue vlmPartitionQueue, Environment env) {
        return new RemotePartitions(new WorkerStore(jdbc, new TransactionTemplate(tm)), repository, new MessagingTemplate(partitionRequests),
                admin, vlmPartitionQueue, env.getProperty("vlm.worker.poll-interval", Duration.class, Duration.ofSeconds(1)));
    }
}
