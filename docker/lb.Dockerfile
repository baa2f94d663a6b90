# A small nginx load balancer for several API replicas (docker/compose.scale.yml), built on the
# same base as the other images so it needs no registry of its own.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# the base's own Debian release decides nginx's version
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin balancer
COPY docker/nginx.conf /etc/nginx/nginx.conf
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["nginx", "-g", "daemon off;"]
