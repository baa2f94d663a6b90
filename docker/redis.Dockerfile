# The rate-limit store that the API replicas share (docker/compose.scale.yml): Debian's
# redis-server on the same base as the other images, so it needs no registry of its own.
# Counts only: nothing is saved to disk, and a restart starts every client's window afresh.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# the base's own Debian release decides redis's version
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin store
USER 10001
EXPOSE 6379
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["redis-cli", "ping"]
# protected mode off: it refuses every peer but loopback when there is no password, and the
# replicas reach it over the compose network; the port is published nowhere
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/tmp"]
