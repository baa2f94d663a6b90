"""Request and response bodies of the HTTP API (documented in OpenAPI with examples)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Direction = Literal["forward", "backward"]  # app.gates.DIRECTIONS, as a type the API checks
MAX_LAYER, MAX_UNIT = 63, 4095  # bounds on a unit's address, far above any bundle's


def _encodable(value: str) -> str:
    # JSON can carry lone UTF-16 surrogates ("\\ud800") that no response can echo back
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds an unpaired surrogate; send valid Unicode") from None
    return value


Text = Annotated[str, AfterValidator(_encodable)]
REVIEW = "A beautifully shot film with a story that stays with you. I loved every minute."


class PredictRequest(BaseModel):
    """One text to classify."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": REVIEW}]})
    text: Text = Field(description="The review, any length; it is cut to the model's token cap.")


class BatchPredictRequest(BaseModel):
    """Several texts to classify in one request."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": [REVIEW, "Dull."]}]})
    texts: list[Text] = Field(min_length=1, description="Reviews; at most the server's batch limit.")


class TraceRequest(BaseModel):
    """A text whose gate activations to return."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": REVIEW, "max_tokens": 50}]}
    )
    text: Text = Field(description="The review to trace.")
    max_tokens: int | None = Field(None, ge=1, description="Trace at most this many tokens.")


class TraceOptions(TraceRequest):
    """A text to trace, and optionally which part of the trace to return, and how precisely.

    The full trace of a long review is megabytes of JSON; the compact forms are for clients
    that need one gate, a few units or fewer decimals.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": REVIEW},
                {"text": REVIEW, "gates": ["forget"], "layers": [0], "decimals": 3},
            ]
        },
    )
    layers: list[Annotated[int, Field(ge=0)]] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Only these layers (0 is the first); the others are {}.",
    )
    gates: list[str] | None = Field(
        None, min_length=1, max_length=8, description="Only these gates (e.g. forget, cell, hidden)."
    )
    units: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, min_length=1, max_length=4096, description="Only these hidden units, in this order."
    )
    decimals: int | None = Field(
        None, ge=0, le=17, description="Round every activation to this many decimals."
    )


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
    layers: list[dict[Direction, DirectionTrace]]
    model: ModelRef


class SaliencyResponse(BaseModel):
    """Per token: the running sentiment and the occlusion saliency."""

    tokens: list[str]
    score: float = Field(description="P(positive) of the whole (capped) text.")
    running: list[float] = Field(description="P(positive) of the model reading tokens 0..t only.")
    occlusion: list[float] = Field(description="score minus P(positive) with token t replaced by <unk>.")
    truncated: bool
    model: ModelRef


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str
    message: str
    request_id: str | None = Field(
        None, description="The request's ID, also in its X-Request-ID header; quote it to the operator."
    )


class ErrorResponse(BaseModel):
    """The shape of every error response."""

    error: ErrorDetail


class ProtocolError(BaseModel):
    """Error body of the Open Inference Protocol routes (its specification's shape)."""

    error: str


class InferInput(BaseModel):
    """The Open Inference Protocol v2 input: texts as a BYTES tensor of shape [N] (or [N, 1])."""

    name: Literal["text"]
    shape: list[int]
    datatype: Literal["BYTES"]
    parameters: dict | None = None
    data: list[Text] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape_matches_data(self) -> InferInput:
        if self.shape not in ([len(self.data)], [len(self.data), 1]):
            raise ValueError(f"shape {self.shape} does not hold the {len(self.data)} texts in data")
        return self


class RequestedOutput(BaseModel):
    """An output the client asks for."""

    name: Literal["probabilities", "label"]
    parameters: dict | None = None


class InferRequest(BaseModel):
    """Open Inference Protocol v2 inference request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [REVIEW]}]}]
        }
    )
    id: Text | None = None
    parameters: dict | None = None
    inputs: list[InferInput] = Field(min_length=1, max_length=1)
    outputs: list[RequestedOutput] | None = None


class OutputTensor(BaseModel):
    """An Open Inference Protocol v2 output tensor."""

    name: str
    shape: list[int]
    datatype: str
    data: list


class InferResponse(BaseModel):
    """Open Inference Protocol v2 inference response."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[OutputTensor]


class UnitRef(BaseModel):
    """One hidden unit of the served model."""

    model_config = ConfigDict(extra="forbid")
    layer: int = Field(0, ge=0, le=MAX_LAYER, description="Layer, 0 the first.")
    direction: Direction = "forward"
    unit: int = Field(ge=0, le=MAX_UNIT, description="Unit within the layer and direction.")


class MatchRequest(BaseModel):
    """The units that mark a span, whose other occurrences in the corpus to find."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"units": [{"layer": 0, "direction": "forward", "unit": 92}], "length": 3, "k": 10}]
        },
    )
    units: list[UnitRef] = Field(min_length=1, max_length=4096, description="Units that must all be on.")
    length: int = Field(
        1, ge=1, le=1000, description="Tokens in the selected span; similar runs rank higher."
    )
    k: int = Field(20, ge=1, le=100, description="Matches to return, best first.")


class Context(BaseModel):
    """A place in the indexed corpus: the span, the tokens either side, and which review."""

    review: int = Field(description="The review's id in its folder (aclImdb/test/<label>/<id>_<rating>.txt).")
    label: Literal["negative", "positive"]
    position: int = Field(description="Index of the span's first token in the review.")
    before: list[str]
    tokens: list[str]
    after: list[str]


class Match(Context):
    """A run of tokens where every selected unit is on."""

    score: float = Field(description="Specificity (selected / all units on) times length similarity.")


class MatchResponse(BaseModel):
    """The best runs, and how many there were."""

    matches: list[Match]
    total: int = Field(description="Runs found in the corpus, before taking the best k.")
    model: ModelRef


class UnitContext(Context):
    """A review's token where the unit peaks."""

    value: float = Field(description="The unit's hidden state h at that token.")


class UnitContextsResponse(BaseModel):
    """The reviews where a unit is highest and lowest, one token each."""

    unit: UnitRef
    highest: list[UnitContext]
    lowest: list[UnitContext]
    model: ModelRef


class MatchIndexInfo(BaseModel):
    """What the corpus index covers."""

    model: ModelRef
    threshold: float = Field(description="A unit is on where its hidden state h is at least this.")
    max_tokens: int = Field(description="Tokens read per review.")
    source: str
    top_k: int = Field(description="Contexts kept per unit and side.")
    layers: int
    directions: list[Direction]
    hidden_size: int
    reviews: int
    tokens: int
