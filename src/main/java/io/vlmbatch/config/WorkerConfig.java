package io.vlmbatch.config;

import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunKeys;
import io.vlmbatch.run.RunOwnership;
import io.vlmbatch.worker.BrokerConnectionReporter;
import io.vlmbatch.worker.PartitionQueue;
import io.vlmbatch.worker.PartitionRequestConverter;
import io.vlmbatch.worker.PartitionWorker;
import io.vlmbatch.worker.WorkerHeartbeat;
import io.vlmbatch.worker.WorkerStore;
import java.time.Duration;
import java.util.Set;
import org.springframework.amqp.core.AcknowledgeMode;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.rabbit.connection.ConnectionFactory;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.Step;
import org.springframework.batch.integration.partition.StepExecutionRequestHandler;
import org.springframework.boot.amqp.autoconfigure.RabbitAutoConfiguration;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.core.env.Environment;
import org.springframework.integration.amqp.dsl.Amqp;
import org.springframework.integration.config.EnableIntegration;
import org.springframework.integration.dsl.IntegrationFlow;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * `vlm-batch worker`: the infer-worker step (InferWorkerConfig, bound late to each partition's run) fed by
 * partition requests from the RabbitMQ queue through Spring Integration AMQP. Each of vlm.worker.concurrency
 * consumers (default 2) takes one request at a time and acknowledges it when its partition is done, so a
 * request held by a worker that dies goes back to the queue; the listener reconnects by itself when the
 * broker goes away and comes back.
 */
@Configuration(proxyBeanMethods = false)
@EnableIntegration
@ImportAutoConfiguration(RabbitAutoConfiguration.class)
@Import(InferWorkerConfig.class)
public class WorkerConfig {

    @Bean
    Queue vlmPartitionQueue(Environment env) {
        return PartitionQueue.declare(env);
    }

    @Bean
    WorkerStore workerStore(JdbcTemplate jdbc, PlatformTransactionManager tm) {
        return new WorkerStore(jdbc, new TransactionTemplate(tm));
    }

    @Bean(destroyMethod = "close")
    WorkerHeartbeat workerHeartbeat(WorkerStore store, RunOwnership ownership, Environment env) {
        return new WorkerHeartbeat(store, ownership.host(), env.getProperty("vlm.worker.heartbeat", Duration.class, Duration.ofSeconds(5)));
    }

    @Bean
    PartitionWorker partitionWorker(JobRepository repository, WorkerStore store, WorkerHeartbeat self, Step inferWorker,
                                    RunInference inference) {
        StepExecutionRequestHandler handler = new StepExecutionRequestHandler();
        handler.setJobRepository(repository);
        handler.setStepLocator(name -> name.equals(inferWorker.getName()) ? inferWorker : null);
        return new PartitionWorker(repository, store, self, handler,
                job -> RunKeys.definition(job.getJobParameters()).run().workerTimeout(), inference::jobEnded);
    }

    /** Registered while the context is built, so it is listening before the flow's consumers first connect (at start). */
    @Bean
    BrokerConnectionReporter brokerConnectionReporter(ConnectionFactory connectionFactory, Environment env) {
        BrokerConnectionReporter reporter = new BrokerConnectionReporter(
                env.getProperty("spring.rabbitmq.host", "localhost") + ":" + env.getProperty("spring.rabbitmq.port", "5672"));
        connectionFactory.addConnectionListener(reporter);
        return reporter;
    }

    @Bean
    IntegrationFlow partitionRequestsFromBroker(ConnectionFactory connectionFactory, Queue vlmPartitionQueue, PartitionWorker worker,
                                                Environment env) {
        int consumers = env.getProperty("vlm.worker.concurrency", Integer.class, 2);
        if (consumers < 1 || consumers > 256) throw new IllegalArgumentException("vlm.worker.concurrency must be 1..256, got " + consumers);
        return IntegrationFlow.from(Amqp.inboundAdapter(connectionFactory, vlmPartitionQueue)
                        .messageConverter(new PartitionRequestConverter(Set.of(InferWorkerConfig.STEP)))
                        .configureContainer(c -> c.concurrentConsumers(consumers)
                                .prefetchCount(1)
                                .acknowledgeMode(AcknowledgeMode.AUTO)
                                .defaultRequeueRejected(false)
                                .recoveryInterval(2000L)
                                .missingQueuesFatal(false)))
                .handle(worker, "handle")
                .get();
    }
}
