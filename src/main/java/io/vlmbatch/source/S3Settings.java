package io.vlmbatch.source;

/**
 * How to reach S3 or an S3-compatible store. Every field is optional. Credentials are deliberately
 * absent: they come from the AWS SDK's default provider chain (environment, system properties,
 * ~/.aws profiles, container/instance roles) so they never sit in job files, logs or the database.
 *
 * @param endpoint  endpoint override, e.g. {@code http://minio:9000}; null for AWS
 * @param region    region name; null means the SDK's default region chain, else us-east-1
 * @param pathStyle path-style addressing ({@code endpoint/bucket/key}), which most S3-compatible stores need
 */
public record S3Settings(String endpoint, String region, boolean pathStyle) {

    public static final S3Settings DEFAULT = new S3Settings(null, null, false);

    public S3Settings {
        endpoint = blankToNull(endpoint);
        region = blankToNull(region);
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }
}
