# Switchyard's container image: built on the official rust image, run on Debian slim as an
# unprivileged user. The config is mounted at /etc/switchyard/switchyard.toml; passwords in
# it can be written as "${NAME}" and given as environment variables (see README.md).
#
#   docker build -t switchyard .
#   docker run -v $PWD/switchyard.toml:/etc/switchyard/switchyard.toml:ro -p 6432:6432 switchyard

FROM rust:1-bookworm AS build
WORKDIR /src
# A release build without debug information, symbols stripped: a small binary.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols
# Dependencies first, in their own layer: a change to src/ does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY examples examples
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --bin switchyard \
 && rm -rf src
COPY src src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin switchyard \
 && cp target/release/switchyard /usr/local/bin/switchyard \
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
