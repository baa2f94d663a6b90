"""TorchServe: a custom handler over onnxruntime. TorchServe's frontend (Java) gathers up to
``batchSize`` requests, waiting at most ``maxBatchDelay`` ms, and hands them to this handler in
its Python worker as one list (:mod:`benchmarks.peers.servers` writes the model's config).
"""

from benchmarks.peers.apps.onnx_model import SentimentModel


class SentimentHandler:
    """The bundle behind TorchServe's handler interface: ``initialize``, then ``handle`` per batch."""

    def __init__(self) -> None:
        self.model: SentimentModel | None = None

    def initialize(self, context) -> None:
        """Load the model once the worker starts."""
        self.model = SentimentModel.from_env()

    def handle(self, data: list[dict], context) -> list[dict]:
        """One answer per request of the batch, from one onnxruntime call."""
        texts = []
        for row in data:
            body = row.get("body") or row.get("data")
            if isinstance(body, bytes | bytearray):  # TorchServe parses only some content types
                import json

                body = json.loads(body)
            texts.append(body["text"])
        return self.model.predict(texts)
