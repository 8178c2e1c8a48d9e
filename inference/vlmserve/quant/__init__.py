"""NF4 4-bit weights (bitsandbytes' format): code book and (de)quantization, NF4Linear, the default
GLM-4V-9B policy, fused Triton kernels (GPU) and reading bitsandbytes checkpoints."""
