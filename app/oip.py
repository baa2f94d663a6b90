"""The Open Inference Protocol (KServe v2) codec, over the protocol-neutral service.

A request's BYTES tensor becomes texts; the service's predictions become the FP32
``probabilities`` and BYTES ``label`` tensors; the model's metadata and the model-name check
are the protocol's. Its errors have the specification's shape, ``{"error": "message"}``: the
routes of the v2 router are :class:`OipRoute`, which carries that shape, and the app's error
handlers render each error in the shape of the route it happened on.
"""

from __future__ import annotations

from fastapi.routing import APIRoute

from app.errors import ModelNotFound
from app.runtime import LoadedModel
from app.schemas import InferRequest
from app.service import Predictions, SentimentService
from model.bundle import LABELS


def error_body(code: str, message: str) -> dict:
    """The protocol's error body: one string, the code first."""
    return {"error": f"{code}: {message}"}


class OipRoute(APIRoute):
    """A route of the Open Inference Protocol: its errors take the protocol's shape."""

    error_body = staticmethod(error_body)


def served_model(service: SentimentService, name: str) -> LoadedModel:
    """The served model; :class:`ModelNotFound` unless ``name`` is its name."""
    model = service.model
    if name != model.name:
        raise ModelNotFound(f"model {name!r} is not served here; this server serves {model.name!r}")
    return model


def model_metadata(model: LoadedModel) -> dict:
    """The protocol's model metadata: name, versions, platform, input and output tensors."""
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(LABELS)]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }


def request_texts(request: InferRequest) -> list[str]:
    """The texts of the request's one input tensor (its schema checked name, type and shape)."""
    return request.inputs[0].data


def infer_response(name: str, request: InferRequest, predictions: Predictions) -> dict:
    """The ``infer`` response: the outputs the request asked for (all by default), in its order."""
    items = predictions.items
    outputs = {
        "probabilities": {
            "name": "probabilities",
            "datatype": "FP32",
            "shape": [len(items), len(LABELS)],
            "data": [p["probabilities"][label] for p in items for label in LABELS],
        },
        "label": {
            "name": "label",
            "datatype": "BYTES",
            "shape": [len(items)],
            "data": [p["label"] for p in items],
        },
    }
    wanted = [o.name for o in request.outputs] if request.outputs else list(outputs)
    return {
        "model_name": name,
        "model_version": predictions.model["version"],
        "id": request.id,
        "outputs": [outputs[w] for w in dict.fromkeys(wanted)],
    }
