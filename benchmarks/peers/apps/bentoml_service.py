"""BentoML: a ``@bentoml.service`` whose API is ``batchable``, so BentoML's adaptive batching
gathers concurrent requests, up to ``max_batch_size``. BentoML chooses how long a batch waits
itself, from the calls' measured times; its ``max_latency_ms`` is not that wait but a deadline
past which a request is refused (503), so it is the service's request timeout, 10 s, here.

A batchable API takes a list: each request POSTs ``{"texts": [review]}`` and gets a list back.
``bentoml serve benchmarks.peers.apps.bentoml_service:Sentiment --port PORT``
"""

import bentoml

from benchmarks.peers.apps.onnx_model import SentimentModel, batching, workers

MAX_BATCH, _ = batching()


@bentoml.service(workers=workers())
class Sentiment:
    """The bundle behind one batchable API."""

    def __init__(self) -> None:
        self.model = SentimentModel.from_env()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=10_000)
    def predict(self, texts: list[str]) -> list[dict]:
        """One onnxruntime call for the batch BentoML gathered."""
        return self.model.predict(texts)
