"""Request and response bodies of the HTTP API (documented in OpenAPI with examples)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

REVIEW = "A beautifully shot film with a story that stays with you. I loved every minute."


class PredictRequest(BaseModel):
    """One text to classify."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": REVIEW}]})
    text: str = Field(description="The review, any length; it is cut to the model's token cap.")


class BatchPredictRequest(BaseModel):
    """Several texts to classify in one request."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": [REVIEW, "Dull."]}]})
    texts: list[str] = Field(min_length=1, description="Reviews; at most the server's batch limit.")


class TraceRequest(BaseModel):
    """A text whose gate activations to return."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": REVIEW, "max_tokens": 50}]}
    )
    text: str = Field(description="The review to trace.")
    max_tokens: int | None = Field(None, ge=1, description="Trace at most this many tokens.")


class ModelRef(BaseModel):
    """Which model answered."""

    name: str
    version: str


class Probabilities(BaseModel):
    """Class probabilities; they sum to 1."""

    negative: float
    positive: float


class Prediction(BaseModel):
    """One text's prediction."""

    label: Literal["negative", "positive"]
    score: float = Field(description="P(positive).")
    probabilities: Probabilities
    tokens: int = Field(description="Tokens the model read.")
    truncated: bool = Field(description="True when the text had more tokens than the cap.")


class PredictResponse(Prediction):
    """A prediction and the model that made it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "label": "positive",
                    "score": 0.97,
                    "probabilities": {"negative": 0.03, "positive": 0.97},
                    "tokens": 19,
                    "truncated": False,
                    "model": {"name": "imdb-lstm", "version": "1"},
                }
            ]
        }
    )
    model: ModelRef


class BatchPredictResponse(BaseModel):
    """Predictions in the order of the request's texts."""

    predictions: list[PredictResponse]
    model: ModelRef


class DirectionTrace(BaseModel):
    """Gate name -> ``[tokens][hidden]`` activations of one direction of one layer."""

    gates: dict[str, list[list[float]]]


class TraceResponse(BaseModel):
    """The prediction and, per layer and direction, the per-token gate activations."""

    prediction: Prediction
    tokens: list[str]
    token_ids: list[int]
    cell: Literal["lstm", "peephole", "gru", "rnn"]
    layers: list[dict[Literal["forward", "backward"], DirectionTrace]]
    model: ModelRef


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str
    message: str


class ErrorResponse(BaseModel):
    """The shape of every error response."""

    error: ErrorDetail


class ProtocolError(BaseModel):
    """Error body of the Open Inference Protocol routes (its specification's shape)."""

    error: str


class InferTensor(BaseModel):
    """An Open Inference Protocol v2 tensor."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict | None = None
    data: list


class InferRequest(BaseModel):
    """Open Inference Protocol v2 inference request."""

    id: str | None = None
    parameters: dict | None = None
    inputs: list[InferTensor] = Field(min_length=1)
    outputs: list[dict] | None = None


class InferResponse(BaseModel):
    """Open Inference Protocol v2 inference response."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict | None = None
    outputs: list[InferTensor]
