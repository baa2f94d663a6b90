"""The sentiment API: predictions, traces and the model card."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.api.deps import KeyedService, PredictionService, Service
from app.runtime import TraceView
from app.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    ErrorResponse,
    PredictRequest,
    PredictResponse,
    SaliencyResponse,
    TraceOptions,
    TraceRequest,
    TraceResponse,
)

ERRORS = {status: {"model": ErrorResponse} for status in (401, 413, 422, 429, 503, 504)}
router = APIRouter(prefix="/v1", tags=["sentiment"], responses=ERRORS)


@router.post("/predict", response_model=PredictResponse, summary="Classify one review")
async def predict(body: PredictRequest, service: PredictionService) -> dict:
    """Sentiment of one text."""
    return (await service.predict([body.text])).items[0]


@router.post("/predict/batch", response_model=BatchPredictResponse, summary="Classify several reviews")
async def predict_batch(body: BatchPredictRequest, service: PredictionService) -> dict:
    """Sentiment of each text, in order."""
    predictions = await service.predict(body.texts)
    return {"predictions": predictions.items, "model": predictions.model}


@router.post(
    "/trace",
    response_model=TraceResponse,
    summary="Gate activations per token",
    responses={401: {"model": ErrorResponse}},
)
async def trace(body: TraceOptions, service: KeyedService) -> Response:
    """The prediction plus every gate of every layer and direction, per token (or the layers,
    gates and units asked for, rounded to ``decimals``)."""
    view = TraceView(
        *(None if v is None else tuple(v) for v in (body.layers, body.gates, body.units)), body.decimals
    )
    return Response(await service.trace(body.text, body.max_tokens, view), media_type="application/json")


@router.post(
    "/trace/saliency",
    response_model=SaliencyResponse,
    summary="Running sentiment and token saliency",
    responses={401: {"model": ErrorResponse}},
)
async def saliency(body: TraceRequest, service: KeyedService) -> dict:
    """Per token: P(positive) reading up to it, and how much replacing it with <unk> moves the score."""
    return await service.saliency(body.text, body.max_tokens)


@router.get("/model", summary="The model card")
async def model_card(service: Service) -> dict:
    """The served bundle's ``model_card.json`` without the fields that name local paths."""
    return service.model_card()
