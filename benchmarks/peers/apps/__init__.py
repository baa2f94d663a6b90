"""One small app per peer server, each serving the bundle through :mod:`.onnx_model`.

Each runs in the peer's own virtual environment (``.peers/<name>/``, from
``benchmarks/peers/requirements/<name>.txt``) with the repository on ``PYTHONPATH``, so that the
tokenizer is the repository's own ``model/tokenizer.py``. Nothing here imports ``app``.
"""
