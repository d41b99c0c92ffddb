# syntax=docker/dockerfile:1
# duckbank image: a release build in a Rust builder, copied into a slim Debian runtime.
# Needs BuildKit (the default in current Docker) for the cache mounts.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The target dir is a cache mount (the bundled DuckDB takes ~30 min to compile cold), so the
# binary is copied out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/duckbank /usr/local/bin/duckbank

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 duckbank \
    && useradd --system --uid 10001 --gid duckbank --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin duckbank \
    && mkdir -p /data /app \
    && chown duckbank:duckbank /data
COPY --from=builder /usr/local/bin/duckbank /usr/local/bin/duckbank

# duckbank.toml and .env are read from the working directory; mount them into /app if wanted.
WORKDIR /app
ENV DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000
VOLUME ["/data"]
# 8000: HTTP; 5433: the PostgreSQL wire protocol of workspaces (PGWIRE_PORT, 0 = off).
EXPOSE 8000 5433
USER duckbank

# The check uses port 8000; change it too if you override PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1

ENTRYPOINT ["/usr/local/bin/duckbank"]
CMD ["serve"]
