# Dockerfile - relayd on Debian 12 (bookworm), built from this checkout.
#
#   docker build -t relayd .
#   docker run --rm -p 11060:11060 relayd        # standalone, ws://localhost:11060
#
# docker-compose.yml runs a three-node cluster with Redis and HAProxy from
# this image.

# --- build stage: compilers and -dev packages, thrown away afterwards ---
FROM debian:bookworm-slim AS build

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libwebsockets-dev libhiredis-dev libssl-dev libyaml-dev libev-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY node node
COPY cluster cluster
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRELAYD_TESTS=OFF \
    && cmake --build build -j"$(nproc)" \
    && cmake --install build --prefix /opt/relayd --strip

# --- runtime stage: the binary, its shared libraries and nothing else ---
FROM debian:bookworm-slim

# curl serves the health checks (docker-compose.yml polls /readyz).
# libwebsockets-evlib-ev is the plugin lws loads at run time for the default
# event loop (server.event_loop: epoll); libev4 is the library it and relayd use.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libwebsockets17 libwebsockets-evlib-ev libev4 libhiredis0.14 libyaml-0-2 libssl3 \
        ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin relayd

COPY --from=build /opt/relayd/bin/relayd /usr/local/bin/relayd
COPY conf/relayd.yaml /etc/relayd/relayd.yaml

USER relayd:relayd
# Clients, admin HTTP (/healthz, /readyz, /metrics), other cluster nodes.
EXPOSE 11060 11061 11062
ENTRYPOINT ["relayd"]
# Standalone by default, reachable from outside the container; the admin
# port stays on the container's loopback. docker-compose.yml replaces this.
CMD ["--bind", "0.0.0.0"]
