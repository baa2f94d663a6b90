"""Offline training pipeline: data, training, evaluation, ONNX export and the model bundle."""
