# The trainer image: runs the training pipeline and writes a model bundle to a mounted folder.
#   docker build -f docker/trainer.Dockerfile -t imdb-sentiment-trainer .
# torch comes from PyTorch's index of CPU-only wheels (TORCH_INDEX, searched beside PyPI; PyPI's
# torch is the CUDA build, gigabytes of libraries a CPU trainer never loads). Offline, put the
# CPU wheel of torch==2.13.0 in docker/wheels/ (part of the build context, searched first):
# with a torch wheel there the index is not consulted at all (CI does this, docker/e2e.sh).
#   docker build --build-arg TORCH_INDEX= ...   (PyPI only)
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:${PATH} \
    MPLCONFIGDIR=/tmp/matplotlib
COPY requirements/ /tmp/requirements/
COPY docker/wheels/ /tmp/wheels/
RUN index="${TORCH_INDEX}" \
    && if ls /tmp/wheels/torch-*.whl > /dev/null 2>&1; then index=""; fi \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --find-links /tmp/wheels \
        ${index:+--extra-index-url "${index}"} -r /tmp/requirements/train.txt \
    && rm -rf /tmp/wheels /tmp/requirements
# /bundles belongs to the trainer so a fresh named volume mounted there is writable by it
RUN useradd --system --uid 10001 --create-home --shell /usr/sbin/nologin trainer \
    && mkdir -p /bundles && chown trainer /bundles
WORKDIR /srv
COPY model/ model/
COPY training/ training/
COPY configs/ configs/
USER 10001
ENTRYPOINT ["python", "-m", "training.train"]
CMD ["--config", "configs/default.toml", "--data", "/data/aclImdb_v1.tar.gz", "--output", "/bundles/run", "--skip-if-current"]
