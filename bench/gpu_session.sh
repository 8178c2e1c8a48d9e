#!/usr/bin/env bash
# Every done-when figure of issues 13 (NF4) and 14 (bf16 / FP8 serving) in ONE device call of 600 s:
#
#   run(command="bash bench/gpu_session.sh", timeout_s=600)            # all parts, in this order
#   run(command="bash bench/gpu_session.sh compare budget16")          # only these parts
#   run(command="VLM_COMMIT=abc1234 bash bench/gpu_session.sh ...")    # the commit to print (the device's HEAD is stale)
#
# Parts (seconds each at most; a part that would start with under 30 s left is skipped):
#   decode    nf4_memory_speed.py nf4 + bf16, batch 1/16/64: decode tok/s per row (CUDA graphs), lone-request
#             TTFT, batch-1 peak memory (the default 256 MiB NF4 scratch counted in); nf4 up to 170 s    240
#   serve_nf4 serve_throughput.py --quant nf4 at concurrency 1 and 64 (lone TTFT, images/s)             130
#   compare   serve_throughput.py --compare: bf16 and FP8 at 64 and 128 (best images/s, TTFT p50 at 64,
#             FP8's error)                                                                              180
#   budget16  serve_throughput.py --quant nf4 --budget-gib 16: the memory plan, the KV slots it holds,
#             images/s                                                                                  the rest
#   sweep     nf4_kernel_sweep.py: every NF4 decode candidate at 16 and 64 rows on the decoder's shapes, the
#             large-row paths (prefill, vision), and a lone request's first token split into vision and prefill,
#             bf16 vs NF4 at 8 and 256 MiB of scratch (not in the default list)                            300
#   grid      nf4_kernel_sweep.py --grid on the decoder's five shapes at 16 and 64 rows: the tuner's candidates,
#             and their register-table (LUT 3) tiles with the block scale moved, with K split for half and
#             twice the programs per SM and with register caps, and more LUT 3 tiles (not in the default
#             list)                                                                                       240
#   ncu       nf4_ncu.py: Nsight Compute counters (DRAM / SM throughput, registers, occupancy, stall reasons) of
#             the three fastest fused NF4 kernels and bf16 cuBLAS on dense_h_to_4h at 1, 16 and 64 rows (not
#             in the default list)                                                                        120
#   rounds    serve_throughput.py --round-images 2 4 8: bf16 images/s and TTFT at concurrency 64 for each number of
#             new images admitted per scheduler round (not in the default list)                        170
#   decode_attn  decode_attention_check.py (the one-kernel decode attention against the torch path: output, cache,
#             us/layer), then the decode part again with VLMSERVE_DECODE_ATTENTION=torch into
#             nf4_memory_speed_torch_decode.json: against decode's figures (not in the default list)     60 + 240
#   fp8_check  fp8_check.py: every FP8 kernel against its reference, and each FP8 layer with its producer against
#             bf16 at the vision tower's, the prefill's and decode rows (not in the default list)           90
#   kernels   gpu_kernel_profile.py: bf16 vision micro-batch, prefill and decode under torch.profiler: time per kernel
#             category, top kernels, GPU idle share (not in the default list)                             120
#   decode_profile  gpu_kernel_profile.py --sections decode, NF4 then bf16, at 1, 16 and 64 rows: where a decode
#             step's GPU time goes, per kernel category and top kernels (not in the default list)          150 + 150
#   tests     the GPU tests (NF4 kernels against the fallback on every shape and candidate, the chunked path, the
#             decode attention, split-K partials summed by their consumers), their output in the log: first thing after a kernel change; cold Triton compiles
#             take over 240 s on a fresh machine (session 11) (not in the default list)                    420
#   gluon     nf4_gluon_probe.py: on the decoder's five shapes at 1, 16, 64 and 128 rows, the tuned choice on the
#             kernel layout (the Gluon ring kernel) against the tuned Triton kernels on bitsandbytes' layout and
#             bf16, and every ring candidate checked against dequant + F.linear (not in the default list)   240
#   steady    compare's runs with 2.5 images per client (its 1.5 leave the first wave's burst and the tail a third
#             of the run) (not in the default list)                                                     240
#   best      compare's runs at 128 and 192, 3 images per client: whether 128 is the best concurrency (not in
#             the default list)                                                                           420
#   decode_fp8  gpu_kernel_profile.py --quant fp8 --sections decode at 64 and 128 rows (not in the default list) 120
#   long      compare's runs with 4 images per client (not in the default list)                           420
#   vision_mlp  vision_mlp_check.py: the vision MLP with GELU in fc1's epilogue against the separate erf GELU (time,
#             error against float32), FP8's GELU + quantization in one pass against two (not in the default list)  60
#   serve_kernels  gpu_kernel_profile.py --sections vision,serve, bf16 then FP8: a 4-image vision micro-batch's
#             kernels, then the engine serving at concurrency 128 profiled over a steady-state window: how much of
#             serving the GPU sits idle, and in which kernels the rest goes (not in the default list)   150 + 150
#   tests_fused  the fused-kernel tests with their GPU ones (GELU epilogue, FP8 producers, grouped-head prefill
#             attention, in-place rotary), then the tiny golden fixture's parity on the GPU (gpu_model_check.py
#             --fixture-only) (not in the default list)                                                 90 + 60
#   vision_sweep  vision_attention_check.py (cuDNN on the model's 112-dim heads against heads padded to 128, alone
#             and in the whole attention block), then vision_mlp_check.py --chunks: the vision MLP, bf16 and FP8,
#             for each size of fc1's output chunks, timed in interleaved rounds (not in the default list)   60 + 90
#   overlap   overlap_check.py --green 112 120: decode steps replayed beside a 4-image prefill round on a second
#             stream (prefill on the whole GPU, or on green contexts of 112 / 120 SMs) against the two one after
#             the other, bf16 and FP8 at 64 and 128 rows (not in the default list)                       150
#   record    serve_throughput.py --compare at 64, 128 and 192, 2 images per client: the issue-14 figures with
#             the best concurrency measured (not in the default list)                                     360
#   check     nf4_memory_speed.py check: every NF4 path and tuning candidate against the fallback on every
#             layer shape, per-layer NF4 vs bf16 times (not in the default list: ~3 min)                 200
# Each part writes its JSON into $OUT as it goes (a part cut off keeps the runs it finished), its output goes
# to $OUT/gpu_session.log, and after every part bench/gpu_session_summary.py rewrites the table of targets in
# $OUT/gpu_session_summary.json and summary.txt (printed at the end): at most 8 files come back.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu_session}
mkdir -p "$OUT"
LOG=$OUT/gpu_session.log
TOTAL=${GPU_SESSION_SECONDS:-585}        # the device call's 600 s, less time to print the summary
START=$(date +%s)
export PYTHONPATH=inference:bench PYTHONUNBUFFERED=1 OUT
# NVLink multicast stays off on the lent machines (their rule), also for the processes started here
# Every bench tunes the NF4 kernels afresh (their timings are part of what they report): no choices from disk
export VLMSERVE_TUNING_CACHE=off
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
PY=${PYTHON:-python3}

left() { echo $((TOTAL - ($(date +%s) - START))); }

summary() { "$PY" bench/gpu_session_summary.py "$OUT" > "$OUT/summary.txt" 2>&1; }

part() {  # part NAME SECONDS [ENV=VALUE ...] -- COMMAND ...
    local name=$1 want=$2; shift 2
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    local t; t=$(left)
    [ "$want" -gt 0 ] && [ "$want" -lt "$t" ] && t=$want
    if [ "$t" -lt 30 ]; then
        echo "=== $name: skipped, $(left) s left" | tee -a "$LOG"
        return
    fi
    echo "=== $name: up to $t s: ${envs[*]} $*" | tee -a "$LOG"
    local t0; t0=$(date +%s)
    # timeout signals the whole process group, so a bench's child processes stop with it
    env "${envs[@]}" timeout -k 10 "$t" "$@" >> "$LOG" 2>&1
    local rc=$?
    echo "=== $name: exit $rc after $(( $(date +%s) - t0 )) s$([ $rc -eq 124 ] && echo ' (cut off)')" | tee -a "$LOG"
    summary
}

{
    # the device machine copies the working tree but not its git HEAD: the caller names the commit (VLM_COMMIT)
    commit=${VLM_COMMIT:-"$(git rev-parse --short HEAD 2>/dev/null || echo unknown) (HEAD of this copy)"}
    echo "gpu_session $(date -u +%FT%TZ) commit $commit"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
    "$PY" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, "gpus", torch.cuda.device_count())' 2>&1
} | tee -a "$LOG"

PARTS=("$@")
[ ${#PARTS[@]} -eq 0 ] && PARTS=(decode serve_nf4 compare budget16)
for p in "${PARTS[@]}"; do  # a typo must not cost the device time of the parts before it
    case $p in decode|serve_nf4|compare|budget16|tests|check|sweep|grid|gluon|ncu|rounds|kernels|decode_profile|decode_attn|fp8_check|vision_mlp|serve_kernels|tests_fused|steady|vision_sweep|long|decode_fp8|best|overlap|record) ;;
        *) echo "unknown part '$p' (decode serve_nf4 compare budget16 tests check sweep grid gluon ncu rounds kernels decode_profile decode_attn fp8_check vision_mlp serve_kernels tests_fused steady vision_sweep long decode_fp8 best overlap record)" | tee -a "$LOG"; exit 2 ;;
    esac
done
for p in "${PARTS[@]}"; do
    case $p in
        decode)
            # NF4 gets 170 s: on a fresh machine its kernel tuning compiles every candidate (an H100 took over 150)
            part decode 290 -- "$PY" bench/nf4_memory_speed.py --modes nf4,bf16 \
                --batches 1,16,64 --new-tokens 256 --mode-timeout 210 --out "$OUT/nf4_memory_speed.json" ;;
        serve_nf4)
            part serve_nf4 130 -- "$PY" bench/serve_throughput.py --quant nf4 \
                --concurrency 1 64 --images-per-client 1 --baseline-images 2 --three-task-concurrency 0 ;;
        compare)
            # 1.5 images per client: the clients of the first wave arrive together, the rest as slots free up,
            # which gives the steady-state TTFT ("after the first wave")
            part compare 180 -- "$PY" bench/serve_throughput.py --compare --compare-concurrency 64 128 \
                --ttft-concurrency 64 --images-per-client 1.5 --error-tokens 16 ;;
        steady)
            # 2.5 images per client: three fifths of the requests arrive as slots free up, so the first wave's burst
            # and the last requests' tail weigh less than in compare's 1.5
            part steady 240 -- "$PY" bench/serve_throughput.py --compare --compare-concurrency 64 128 \
                --ttft-concurrency 64 --images-per-client 2.5 --error-tokens 16 \
                --out "$OUT/serve_throughput_compare_steady.json" ;;
        long)
            # 4 images per client: the last wave's tail (its decode steps at a shrinking batch, no vision beside them)
            # is fixed per run, so it weighs twice as much at c=64 as at 128 in a short run
            part long 420 -- "$PY" bench/serve_throughput.py --compare --compare-concurrency 64 128 \
                --ttft-concurrency 64 --images-per-client 4 --error-tokens 16 \
                --out "$OUT/serve_throughput_compare_long.json" ;;
        decode_attn)
            # the one-kernel decode attention (engine/triton_decode.py, the default) against the torch path: output,
            # cache writes and us/layer; then the decode figures on the torch path, against the decode part's
            part decode_attn_check 60 -- "$PY" bench/decode_attention_check.py
            part decode_attn 240 VLMSERVE_DECODE_ATTENTION=torch -- "$PY" \
                bench/nf4_memory_speed.py --modes nf4,bf16 --batches 1,16,64 --new-tokens 256 --mode-timeout 170 \
                --out "$OUT/nf4_memory_speed_torch_decode.json" ;;
        fp8_check)
            part fp8_check 90 -- "$PY" bench/fp8_check.py ;;
        kernels)
            part kernels 120 -- "$PY" bench/gpu_kernel_profile.py ;;
        vision_mlp)
            part vision_mlp 60 -- "$PY" bench/vision_mlp_check.py --out "$OUT/vision_mlp_check.json" ;;
        serve_kernels)
            for q in none fp8; do
                part "serve_kernels_$q" 150 -- "$PY" bench/gpu_kernel_profile.py --quant $q --sections vision,serve \
                    --vision-batch 4 --top 12 --out "$OUT/gpu_kernel_profile_serve_$q.json"
            done ;;
        vision_sweep)
            part vision_attention 60 -- "$PY" bench/vision_attention_check.py --images 4 8 \
                --out "$OUT/vision_attention_check.json"
            part vision_chunks 90 -- "$PY" bench/vision_mlp_check.py \
                --chunks 1024 2048 3072 4096 5136 6416 8192 12816 25604 --out "$OUT/vision_mlp_chunks.json"
            ;;
        tests_fused)
            part tests_fused 90 -- "$PY" -m pytest -q -rs inference/tests/test_fused_gelu.py inference/tests/test_fp8.py \
                inference/tests/test_attention.py inference/tests/test_rotary_kernel.py inference/tests/test_fp8_splitk.py
            part fixture_parity 60 -- "$PY" bench/gpu_model_check.py --fixture-only ;;
        overlap)
            # decode steps beside a 4-image prefill round on a second stream, the prefill on the whole GPU or on
            # green contexts (session 16: 1.07-1.16x in isolation, no gain in the engine)
            part overlap 150 -- "$PY" bench/overlap_check.py --green 112 120 ;;
        record)
            # the figures of record since session 16: 192 was the best concurrency on an H100 (bf16 and FP8)
            part record 360 -- "$PY" bench/serve_throughput.py --compare --compare-concurrency 64 128 192 \
                --ttft-concurrency 64 --images-per-client 2 --error-tokens 16 \
                --out "$OUT/serve_throughput_compare_record.json" ;;
        best)
            # is 128 the best concurrency? 192 reads the decode weights for 1.5x the rows per step
            part best 420 -- "$PY" bench/serve_throughput.py --compare --compare-concurrency 128 192 \
                --ttft-concurrency 128 --images-per-client 3 --error-tokens 4 \
                --out "$OUT/serve_throughput_compare_best.json" ;;
        decode_fp8)
            part decode_fp8 120 -- "$PY" bench/gpu_kernel_profile.py --quant fp8 --sections decode \
                --decode-rows 64,128 --top 16 --out "$OUT/gpu_kernel_profile_decode_fp8.json" ;;
        decode_profile)
            for q in nf4 none; do
                part "decode_profile_$q" 150 -- "$PY" bench/gpu_kernel_profile.py --quant $q --sections decode \
                    --decode-rows 1,16,64 --top 16 --out "$OUT/gpu_kernel_profile_decode_$q.json"
            done ;;
        rounds)
            # 2 images per client: 64 requests after the first wave, arriving as slots free up
            part rounds 170 -- "$PY" bench/serve_throughput.py --round-images 2 4 8 --ttft-concurrency 64 \
                --images-per-client 2 ;;
        budget16)
            part budget16 0 -- "$PY" bench/serve_throughput.py --quant nf4 \
                --budget-gib 16 --concurrency 1 32 --images-per-client 1 --baseline-images 1 \
                --three-task-concurrency 0 ;;
        sweep)
            part sweep 300 -- "$PY" bench/nf4_kernel_sweep.py --rows 16,64 --large --ttft 8,256 --seconds 140 \
                --out "$OUT/nf4_kernel_sweep.json" ;;
        grid)
            part grid 240 -- "$PY" bench/nf4_kernel_sweep.py --rows 16,64 --grid \
                --seconds 200 --out "$OUT/nf4_kernel_grid.json" ;;
        gluon)
            part gluon 240 -- "$PY" bench/nf4_gluon_probe.py --rows 1,16,64,128 --seconds 180 \
                --out "$OUT/nf4_gluon_probe.json" ;;
        ncu)
            part ncu 120 -- "$PY" bench/nf4_ncu.py --shape lm.h_to_4h --rows 1,16,64 --out "$OUT/nf4_ncu.json" ;;
        tests)
            part tests 420 -- "$PY" -m pytest -q -rs inference/tests/test_nf4_gpu.py inference/tests/test_nf4_chunked.py \
                inference/tests/test_triton_decode.py inference/tests/test_split_partials.py ;;
        check)
            part check 200 -- "$PY" bench/nf4_memory_speed.py --modes check --out "$OUT/nf4_check.json" ;;
        *)
            echo "unknown part '$p' (decode serve_nf4 compare budget16 tests check sweep grid gluon ncu rounds kernels decode_profile decode_attn fp8_check vision_mlp serve_kernels tests_fused steady vision_sweep long decode_fp8 best overlap record)" | tee -a "$LOG"; exit 2 ;;
    esac
done
summary
cat "$OUT/summary.txt"
