# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run in a slim Debian as a non-root user.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin autodevops && cp target/release/autodevops /autodevops

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/autodevops --create-home autodevops
COPY --from=build /autodevops /usr/local/bin/autodevops
USER 10001:10001
WORKDIR /var/lib/autodevops
ENV BIND_ADDR=0.0.0.0:8080 LOG_FORMAT=json
EXPOSE 8080
# The same image runs every role: `api`, `worker`, `migrate`, or `serve` (all in one).
ENTRYPOINT ["autodevops"]
CMD ["serve"]
