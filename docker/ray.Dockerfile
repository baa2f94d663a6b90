# The Ray image for batch scoring on a cluster (deploy/k8s/batch/rayjob.yaml): Ray with Ray Data
# and the job server, the serving code and the shipped model. The API image never carries Ray.
#   docker build -f docker/ray.Dockerfile -t imdb-lstm-sentiment/ray-score .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:${PATH}
COPY requirements/ /tmp/requirements/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements/ray.txt \
    && rm -rf /tmp/requirements
# KubeRay starts Ray with bash (the slim image has it) as this user, whose home holds Ray's logs
RUN useradd --system --uid 10001 --create-home --shell /bin/bash ray
WORKDIR /srv
COPY model/ model/
COPY app/ app/
COPY models/default/ models/default/
USER 10001
CMD ["ray", "--help"]
