package io.vlmbatch.source;

/**
 * {@code s3://bucket/key}. The key is taken verbatim (no percent-decoding), as the AWS CLI writes it,
 * so keys with spaces or '%' round-trip unchanged.
 */
public record S3Uri(String bucket, String key) {

    public static boolean isS3(String s) {
        return s != null && s.regionMatches(true, 0, "s3://", 0, 5);
    }

    public static S3Uri parse(String s) {
        if (!isS3(s)) {
            throw new SourceException("not an s3:// URI: " + s);
        }
        String rest = s.substring(5);
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String key = slash < 0 ? "" : rest.substring(slash + 1);
        if (bucket.isEmpty()) {
            throw new SourceException("s3:// URI without a bucket: " + s);
        }
        return new S3Uri(bucket, key);
    }

    /** The "folder" part of the key: everything up to and including the last '/'. */
    public String keyFolder() {
        return key.substring(0, key.lastIndexOf('/') + 1);
    }

    @Override
    public String toString() {
        return "s3://" + bucket + "/" + key;
    }
}
