"""Ray Serve: a deployment whose requests meet in ``@serve.batch`` (``max_batch_size``,
``batch_wait_timeout_s``), behind Serve's HTTP proxy, on a local Ray started here.

``python -m benchmarks.peers.apps.ray_app PORT``
"""

import signal
import sys
import threading

import ray
from ray import serve
from starlette.requests import Request

from benchmarks.peers.apps.onnx_model import SentimentModel, batching, workers

MAX_BATCH, WAIT_S = batching()


# max_ongoing_requests: Serve's default (5) would cap the batch, not the load
@serve.deployment(max_ongoing_requests=256, num_replicas=workers())
class Sentiment:
    """The bundle in each replica; concurrent requests to a replica share a call."""

    def __init__(self) -> None:
        self.model = SentimentModel.from_env()

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=WAIT_S)
    async def predict(self, texts: list[str]) -> list[dict]:
        """One onnxruntime call for the batch Serve gathered."""
        return self.model.predict(texts)

    async def __call__(self, request: Request) -> dict:
        """One review in, its answer out."""
        return await self.predict((await request.json())["text"])


if __name__ == "__main__":
    ray.init(include_dashboard=False)
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
    serve.run(Sentiment.bind(), route_prefix="/predict", blocking=False)
    stop = threading.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
