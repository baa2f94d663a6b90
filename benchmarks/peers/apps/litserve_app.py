"""LitServe: a ``LitAPI`` with LitServe's batching (``max_batch_size``, ``batch_timeout``), as its
documentation writes one; the model runs in LitServe's inference worker process.

``python -m benchmarks.peers.apps.litserve_app PORT``
"""

import sys

import litserve as ls

from benchmarks.peers.apps.onnx_model import SentimentModel, batching, workers


class SentimentAPI(ls.LitAPI):
    """Reviews in, ``{"label", "score"}`` out, batched by LitServe."""

    def setup(self, device: str) -> None:
        """Load the model in the worker."""
        self.model = SentimentModel.from_env()

    def decode_request(self, request: dict) -> str:
        """The review of one request."""
        return request["text"]

    def predict(self, texts: list[str]) -> list[dict]:
        """One onnxruntime call for the batch LitServe gathered."""
        return self.model.predict(texts)

    def encode_response(self, output: dict) -> dict:
        """One review's answer."""
        return output


if __name__ == "__main__":
    max_batch, wait_s = batching()
    api = SentimentAPI(max_batch_size=max_batch, batch_timeout=wait_s)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=workers())
    server.run(host="127.0.0.1", port=int(sys.argv[1]), generate_client_file=False)
