package io.vlmbatch.source;

import java.net.URI;
import java.time.Duration;

import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.retries.api.RetryStrategy;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;

/** Builds S3 clients from {@link S3Settings}; credentials always come from the SDK's default chain. */
public final class S3Clients {

    /** Connections per client: image fetches run on many threads at once. */
    private static final int MAX_CONNECTIONS = 64;

    /**
     * A store that throttles (503 SlowDown) or fails (500) for a while must not fail images for good: the
     * SDK's default gives up after about a second. Ten attempts with exponential backoff (throttling: from
     * 1 s up to 20 s apart) ride out tens of seconds; no circuit breaker, which would stop retrying just when
     * many parallel fetches see the same outage.
     */
    private static final RetryStrategy RETRIES = AwsRetryStrategy.standardRetryStrategy().toBuilder()
            .maxAttempts(10)
            .backoffStrategy(BackoffStrategy.exponentialDelay(Duration.ofMillis(100), Duration.ofSeconds(10)))
            .throttlingBackoffStrategy(BackoffStrategy.exponentialDelay(Duration.ofSeconds(1), Duration.ofSeconds(20)))
            .circuitBreakerEnabled(false)
            .build();

    private S3Clients() {}

    public static S3Client create(S3Settings settings) {
        S3ClientBuilder builder = S3Client.builder()
                .credentialsProvider(DefaultCredentialsProvider.builder().build())
                .region(region(settings))
                .forcePathStyle(settings.pathStyle())
                .overrideConfiguration(o -> o.retryStrategy(RETRIES))
                .httpClientBuilder(ApacheHttpClient.builder()
                        .maxConnections(MAX_CONNECTIONS)
                        .connectionTimeout(Duration.ofSeconds(10))
                        .socketTimeout(Duration.ofSeconds(60)));
        if (settings.endpoint() != null) {
            builder.endpointOverride(endpoint(settings.endpoint()));
            // Many S3-compatible stores reject or mangle the flexible checksums that the SDK adds by
            // default since 2.30; ask for them only where the API requires them.
            builder.requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                    .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
        }
        return builder.build();
    }

    private static Region region(S3Settings settings) {
        if (settings.region() != null) {
            return Region.of(settings.region());
        }
        try {
            return DefaultAwsRegionProviderChain.builder().build().getRegion();
        } catch (SdkClientException e) {
            // No region configured anywhere: S3-compatible stores mostly ignore it, and AWS redirects.
            return Region.US_EAST_1;
        }
    }

    private static URI endpoint(String endpoint) {
        try {
            URI uri = URI.create(endpoint);
            if (uri.getScheme() == null || uri.getHost() == null) {
                throw new IllegalArgumentException("needs a scheme and host");
            }
            return uri;
        } catch (IllegalArgumentException e) {
            throw new SourceException("bad S3 endpoint '" + endpoint + "': expected e.g. http://minio:9000", e);
        }
    }
}
