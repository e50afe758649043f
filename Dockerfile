# syntax=docker/dockerfile:1.7
# Nightshift's images: one Rust build, then one small runtime image per service, each a named
# target that docker-compose.yml builds (`build.target`):
#
#   docker build --target gateway    -t nightshift-gateway .     # HTTP :4080
#   docker build --target worker     -t nightshift-worker .      # no port; one per GPU
#   docker build --target metrics    -t nightshift-metrics .     # HTTP :4081
#   docker build --target ollama-sim -t nightshift-ollama-sim .  # simulated Ollama :11434
#   docker build --target batchctl   -t nightshift-batchctl .    # the CLI
#   docker build --target standalone -t nightshift .             # everything in one process
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# The workspace needs Rust 1.89+ (Cargo.toml's rust-version); CI builds with 1.95.
ARG RUST_VERSION=1.95
ARG DEBIAN_SUITE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_SUITE} AS builder
WORKDIR /src
COPY . .
# The crates.io registry, git checkouts and target/ live in BuildKit cache mounts, so a rebuild
# after a code change recompiles only what changed. A cache mount does not outlive its step, so
# the binaries are copied out to /out in the same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eux; \
    bins="nightshift-gateway nightshift-worker gpu-probe nightshift-metrics ollama-sim batchctl nightshift"; \
    args=""; for b in $bins; do args="$args --bin $b"; done; \
    cargo build --release --locked $args; \
    mkdir -p /out; \
    for b in $bins; do cp "target/release/$b" /out/; done

# What every service image shares: CA roots (reqwest and the NATS client use rustls with the
# system roots), curl for HEALTHCHECKs and compose healthchecks, and an unprivileged user.
FROM debian:${DEBIAN_SUITE}-slim AS runtime
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 nightshift; \
    useradd --system --uid 10001 --gid nightshift --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin nightshift; \
    install -d -o nightshift -g nightshift /work
# Numeric, so an orchestrator can check `runAsNonRoot` without reading /etc/passwd.
USER 10001:10001
WORKDIR /work
ENV RUST_LOG=info

# The OpenAI-compatible Files and Batches API, and the result collector.
FROM runtime AS gateway
COPY --from=builder /out/nightshift-gateway /usr/local/bin/
EXPOSE 4080
# /readyz answers 200 once Postgres and NATS are reachable (GATEWAY_ADDR moves the port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:4080/readyz || exit 1
ENTRYPOINT ["nightshift-gateway"]

# Runs chunks on a model server. It listens on no port (telemetry goes out over NATS), so it has
# no EXPOSE and no HEALTHCHECK. gpu-probe (`docker compose exec worker gpu-probe`) prints what the
# VRAM sampler sees, to check NVML inside the container.
FROM runtime AS worker
COPY --from=builder /out/nightshift-worker /out/gpu-probe /usr/local/bin/
# NVML comes from libnvidia-ml.so.1, which the NVIDIA container runtime mounts into a container
# given a GPU; `utility` is the one driver capability NVML needs (no CUDA compute here).
ENV NVIDIA_DRIVER_CAPABILITIES=utility
ENTRYPOINT ["nightshift-worker"]

# Telemetry into Postgres, per-batch metrics, the multi-batch report, Prometheus VRAM gauges.
FROM runtime AS metrics
COPY --from=builder /out/nightshift-metrics /usr/local/bin/
EXPOSE 4081
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:4081/readyz || exit 1
ENTRYPOINT ["nightshift-metrics"]

# The simulated Ollama (no GPU, no weights): stands in for `ollama` on machines without a GPU.
FROM runtime AS ollama-sim
COPY --from=builder /out/ollama-sim /usr/local/bin/
# Its own default is 127.0.0.1, unreachable from other containers.
ENV OLLAMA_SIM_ADDR=0.0.0.0:11434
EXPOSE 11434
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:11434/api/version || exit 1
ENTRYPOINT ["ollama-sim"]

# The CLI; files it reads and writes are relative to /work (mount a folder there).
FROM runtime AS batchctl
COPY --from=builder /out/batchctl /usr/local/bin/
ENTRYPOINT ["batchctl"]
CMD ["--help"]

# `nightshift standalone`: gateway, worker and metrics in one process on an embedded queue and
# SQLite in /data (mount a volume there to keep batches across restarts); Ollama at OLLAMA_URL,
# else the built-in simulator. No NATS, no Postgres.
FROM runtime AS standalone
COPY --from=builder /out/nightshift /usr/local/bin/
USER 0:0
RUN install -d -o 10001 -g 10001 /data
USER 10001:10001
ENV NIGHTSHIFT_DATA_DIR=/data
EXPOSE 4080 4081
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:4080/readyz || exit 1
ENTRYPOINT ["nightshift"]
CMD ["standalone"]
