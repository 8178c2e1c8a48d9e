package io.vlmbatch.inference;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/** How many CUDA GPUs this process may use, for {@code inference.gpus: all}. */
final class GpuCount {
    private GpuCount() {}

    /**
     * The GPUs `nvidia-smi -L` lists; 0 without nvidia-smi or a driver. CUDA_VISIBLE_DEVICES, when set,
     * is not looked at: the per-GPU servers set it themselves, counting from 0.
     */
    static int visible() {
        try {
            Process p = new ProcessBuilder("nvidia-smi", "-L").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) return 0;
            return (int) out.lines().filter(l -> l.startsWith("GPU ")).count();
        } catch (IOException e) {
            return 0;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 0;
        }
    }
}
