# The API image: onnxruntime serving of a model bundle, no torch.
#   docker build -f docker/api.Dockerfile -t imdb-sentiment-api .
# It carries the shipped model (models/default) and language model (models/lm), so it serves on its own; compose points
# SENTIMENT_MODEL_DIR at a freshly trained bundle on a volume instead.
# The batch-scoring image (deploy/k8s/batch/score-job.yaml) is this one with Parquet support:
#   docker build -f docker/api.Dockerfile --build-arg REQUIREMENTS=score.txt -t imdb-lstm-sentiment/score .
ARG BASE_IMAGE=python:3.11-slim

# --- build stage: the serving requirements in a virtual environment ---
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# serve.txt, or score.txt (serve.txt and pyarrow) for the batch-scoring image
ARG REQUIREMENTS=serve.txt
COPY requirements/serve.txt requirements/score.txt /tmp/requirements/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements/${REQUIREMENTS} \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3*/site-packages/pip /opt/venv/lib/python3*/site-packages/onnx/backend/test

# --- runtime stage: the environment, the code it serves and the shipped bundle ---
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SENTIMENT_MODEL_DIR=/srv/models/default
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sentiment
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY model/ model/
COPY app/ app/
COPY models/default/ models/default/
# the language model (SENTIMENT_LM_BUNDLE's default path); off, logged, beside a classifier of another vocabulary
COPY models/lm/ models/lm/
USER 10001
EXPOSE 8000
# exec form, and Python rather than curl: the image has no curl and needs none
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
