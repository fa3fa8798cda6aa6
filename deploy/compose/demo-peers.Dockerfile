# The demo's dev token issuer and customers API (transit-guard-demo-peers,
# from integration-tests/), for docker-compose.yml only: never for production.
#
#   docker build -f deploy/compose/demo-peers.Dockerfile -t transit-guard-demo-peers .
ARG RUST_IMAGE=rust:1-bookworm
# As in approver/Dockerfile: `build`, or an image holding
# /out/transit-guard-demo-peers (BuildKit).
ARG BIN_FROM=build

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rustup target add x86_64-unknown-linux-musl \
 && cargo build --release --locked -p integration-tests --bin transit-guard-demo-peers \
      --target x86_64-unknown-linux-musl \
 && mkdir -p /out \
 && cp target/x86_64-unknown-linux-musl/release/transit-guard-demo-peers /out/

FROM ${BIN_FROM} AS bin

FROM scratch
COPY --from=bin /out/transit-guard-demo-peers /usr/local/bin/transit-guard-demo-peers
# Root: it writes the run folder and hands Envoy's key to Envoy's user.
ENTRYPOINT ["/usr/local/bin/transit-guard-demo-peers"]
CMD ["serve"]
