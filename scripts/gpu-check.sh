#!/usr/bin/env bash
# GPU host check of the VRAM figures, for a machine with an NVIDIA GPU, nvidia-smi and PyTorch:
# 1. the worker's sampler (gpu-probe, NVML) against nvidia-smi, idle, while torch holds 8 GiB,
#    and after it lets go;
# 2. the multi-batch test on Nightshift standalone (simulated model, real NVML sampling): a clean
#    run, which must pass, and a run during which another process takes 1 GiB more every 3 s,
#    whose VRAM criterion must fail.
#
#   scripts/gpu-check.sh [BIN_DIR] [OUT_DIR]    (defaults: target/release, gpu-check-out)
#
# BIN_DIR holds release builds of nightshift, batchctl and gpu-probe; everything it measures is
# written under OUT_DIR. Nothing else is needed on the host: no NATS, no Postgres, no Ollama.
set -u
bin="$(cd "${1:-target/release}" && pwd)"
OUT="${2:-${OUT:-gpu-check-out}}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$bin"
log() { echo "== $*"; }
smi() { nvidia-smi --query-gpu=name,uuid,memory.used,memory.total,driver_version --format=csv,noheader; }

log "nvidia-smi before"; smi | tee "$OUT/smi_before.csv"
log "gpu-probe before"; ./gpu-probe --count 2 --every-ms 300 | tee "$OUT/probe_before.jsonl"

cat > /tmp/hold.py <<'PY'
import sys, time, torch
gib, secs, step_every = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
held = [torch.empty(int(gib * (1 << 30)), dtype=torch.uint8, device="cuda")]
torch.cuda.synchronize(); print("holding", gib, "GiB", flush=True)
end = time.time() + secs
next_step = time.time() + step_every if step_every > 0 else float("inf")
while time.time() < end:
    if time.time() >= next_step:
        held.append(torch.empty(1 << 30, dtype=torch.uint8, device="cuda")); torch.cuda.synchronize()
        print("now", gib + len(held) - 1, "GiB", flush=True); next_step += step_every
    time.sleep(0.05)
PY
log "torch holds 8 GiB"
python3 /tmp/hold.py 8 12 0 > "$OUT/hold8.log" 2>&1 &
HOLD=$!
for _ in $(seq 1 100); do grep -q holding "$OUT/hold8.log" && break; sleep 0.2; done
smi | tee "$OUT/smi_held.csv"
./gpu-probe --count 2 --every-ms 300 | tee "$OUT/probe_held.jsonl"
wait $HOLD
log "after torch exits"; smi | tee "$OUT/smi_after.csv"
./gpu-probe --count 1 | tee "$OUT/probe_after.jsonl"

export OLLAMA_URL=http://127.0.0.1:1 OLLAMA_SIM_PARALLEL=8 OLLAMA_SIM_LATENCY_MS=20
export WORKER_CONCURRENCY=8 WORKER_MODELS=llama3.2:1b WORKER_GPU_SAMPLE_SECS=0.5
export GATEWAY_ADDR=127.0.0.1:4080 METRICS_ADDR=127.0.0.1:4081
export NIGHTSHIFT_URL=http://127.0.0.1:4080 NIGHTSHIFT_METRICS_URL=http://127.0.0.1:4081
./nightshift standalone --data-dir /tmp/nsdata 2> "$OUT/nightshift.log" &
NS=$!
for _ in $(seq 1 200); do curl -fs -o /dev/null 127.0.0.1:4080/readyz && break; sleep 0.1; done
sleep 2
curl -s 127.0.0.1:4081/v1/gpus | tee "$OUT/gpus.json"; echo
./batchctl gen --requests 2000 --model llama3.2:1b --out /tmp/b2000.jsonl
log "clean multi-batch"
./batchctl multi-batch --batches 3 --input /tmp/b2000.jsonl --out "$OUT/clean" --pause 2s 2>&1 | tail -45
echo "exit ${PIPESTATUS[0]}"
log "multi-batch while another process takes 1 GiB more every 3 s"
python3 /tmp/hold.py 1 60 3 > "$OUT/leak.log" 2>&1 &
LEAK=$!
for _ in $(seq 1 100); do grep -q holding "$OUT/leak.log" && break; sleep 0.2; done
./batchctl multi-batch --batches 3 --input /tmp/b2000.jsonl --out "$OUT/leak" --pause 2s 2>&1 | tail -45
echo "exit ${PIPESTATUS[0]}"
kill $LEAK 2>/dev/null
kill -TERM $NS; wait $NS; echo "standalone exit $?"
ls -la "$OUT" "$OUT/clean" "$OUT/leak"
