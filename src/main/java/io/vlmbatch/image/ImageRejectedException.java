package io.vlmbatch.image;

/** The input cannot be used as an image; the message is the reason stored with the failed item. */
public class ImageRejectedException extends Exception {

    public ImageRejectedException(String reason) {
        super(reason);
    }

    public ImageRejectedException(String reason, Throwable cause) {
        super(reason, cause);
    }
}
