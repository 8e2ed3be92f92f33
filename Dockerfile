# Switchyard's container image: built on the official rust image, run on Debian slim as an
# unprivileged user. The config is mounted at /etc/switchyard/switchyard.toml; passwords in
# it can be written as "${NAME}" and given as environment variables (see README.md).
#
#   docker build -t switchyard .                      (profile-guided, ~10 min)
#   docker build --build-arg PGO=0 -t switchyard .    (plain release build)
#   docker run -v $PWD/switchyard.toml:/etc/switchyard/switchyard.toml:ro -p 6432:6432 switchyard

FROM rust:1-bookworm AS build
# PGO=1 (the default): the profile-guided build of scripts/pgo-build.sh, the build the
# README's figures are for. It trains an instrumented binary with pgbench against a
# throw-away PostgreSQL inside this stage (about 10 minutes). PGO=0: a plain release build.
ARG PGO=1
# PostgreSQL 15 (server, pgbench, psql) and openssl for the training load; the package must
# not create and start a cluster of its own.
RUN if [ "$PGO" = 1 ]; then \
      mkdir -p /etc/postgresql-common \
      && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
      && apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
           postgresql-15 postgresql-client-15 openssl \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
# A release build without debug information, symbols stripped: a small binary.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols
# Dependencies first, in their own layer: a change to src/ does not rebuild them (the plain
# build; the profile-guided one builds everything twice, with different flags).
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY examples examples
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && if [ "$PGO" = 1 ]; then cargo fetch --locked; \
    else cargo build --release --locked --bin switchyard; fi \
 && rm -rf src
COPY src src
COPY scripts/pgo-build.sh scripts/
COPY integration/lib integration/lib
# The script prints the binary's path last; a failure in it stops the build here.
RUN touch src/main.rs src/lib.rs \
 && if [ "$PGO" = 1 ]; then bash scripts/pgo-build.sh > /tmp/pgo-binary \
      && bin=$(tail -n1 /tmp/pgo-binary); \
    else cargo build --release --locked --bin switchyard && bin=target/release/switchyard; fi \
 && cp "$bin" /usr/local/bin/switchyard \
 && /usr/local/bin/switchyard --version

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 switchyard \
 && useradd --system --uid 10001 --gid switchyard --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin switchyard \
 && mkdir -p /etc/switchyard
COPY --from=build /usr/local/bin/switchyard /usr/local/bin/switchyard
USER 10001:10001
EXPOSE 6432 9930
# SIGTERM: stop accepting clients, let sessions finish for up to shutdown_timeout_ms.
STOPSIGNAL SIGTERM
# GET /healthz on metrics_listen (port 9930 in the shipped configs), with bash's /dev/tcp:
# the slim image has no curl, and the probe needs nothing else.
ENV SWITCHYARD_HEALTH_PORT=9930
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/$SWITCHYARD_HEALTH_PORT && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["--config", "/etc/switchyard/switchyard.toml"]
