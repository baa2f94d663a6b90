"""The sentiment service (FastAPI + onnxruntime, no torch). Built in the service issue; the
bundle it will serve is written by ``training/`` and read through ``model.bundle``."""
