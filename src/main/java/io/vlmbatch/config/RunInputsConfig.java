package io.vlmbatch.config;

import io.vlmbatch.inference.EmbeddedInferenceServer;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunKeys;
import java.nio.file.Path;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Scope;
import org.springframework.core.env.Environment;

/**
 * A run's inputs, bound late from its JobParameters (RunKeys): the job file, read once per job
 * execution through the one JobFileLoader, and the run's date and params. Both are job-scoped without a
 * proxy (records cannot be proxied), so only job- and step-scoped beans take them. Also the registry
 * of the runs' inference services.
 */
@Configuration(proxyBeanMethods = false)
public class RunInputsConfig {

    @Bean
    @Scope("job")
    JobDefinition jobDefinition(@Value("#{jobExecution}") JobExecution execution) {
        return RunKeys.definition(execution.getJobParameters());
    }

    @Bean
    @Scope("job")
    RunParameters runParameters(@Value("#{jobExecution}") JobExecution execution) {
        return RunKeys.runParameters(execution.getJobParameters());
    }

    /**
     * serve's embedded server (shared by its runs and the playground) when the context has one, else one
     * per run, owned by the run's service (a CLI run): vlm.model-dir is the --model it loads.
     */
    @Bean(destroyMethod = "close")
    RunInference runInference(ObjectProvider<EmbeddedInferenceServer> shared, AppPaths paths, Environment env) {
        String model = env.getProperty("vlm.model-dir");
        Path modelDir = model == null || model.isBlank() ? null : Path.of(model).toAbsolutePath();
        return new RunInference(shared.getIfAvailable(), () -> new EmbeddedInferenceServer(paths.home(), modelDir, paths.logs()));
    }
}
