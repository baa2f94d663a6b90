"""The Open Inference Protocol (KServe v2) REST endpoints, over :mod:`app.oip`'s codec."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app import oip
from app.api.deps import PredictionService, Service
from app.schemas import InferRequest, InferResponse, ProtocolError

# tritonclient posts JSON without a Content-Type header, so this router does not insist on one;
# its routes' errors take the protocol's shape
router = APIRouter(
    prefix="/v2",
    route_class=oip.OipRoute,
    tags=["open inference protocol"],
    responses={status: {"model": ProtocolError} for status in (401, 404, 413, 422, 429, 503, 504)},
    strict_content_type=False,
)


@router.get("", summary="Server metadata")
async def server_metadata() -> dict:
    """Name, version and protocol extensions of this server."""
    return {"name": "imdb-lstm-sentiment", "version": "0.1.0", "extensions": []}


@router.get("/health/live", summary="Server liveness")
async def live() -> dict:
    """Always live while serving HTTP."""
    return {"live": True}


@router.get("/health/ready", summary="Server readiness")
async def ready(service: Service) -> JSONResponse:
    """Ready once the model is loaded."""
    return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 503)


@router.get("/models/{name}", summary="Model metadata")
async def metadata(name: str, service: Service) -> dict:
    """Name, versions, platform, inputs and outputs."""
    return oip.model_metadata(oip.served_model(service, name))


@router.get("/models/{name}/ready", summary="Model readiness")
async def model_ready(name: str, service: Service) -> JSONResponse:
    """Whether the named model is ready."""
    oip.served_model(service, name)
    return JSONResponse({"name": name, "ready": service.ready}, status_code=200 if service.ready else 503)


@router.post(
    "/models/{name}/infer",
    response_model=InferResponse,
    response_model_exclude_none=True,
    summary="Inference",
)
async def infer(name: str, body: InferRequest, service: PredictionService) -> dict:
    """A BYTES tensor ``text`` of shape [N] in; FP32 ``probabilities`` [N, 2] and BYTES ``label`` [N] out."""
    oip.served_model(service, name)
    predictions = await service.predict(oip.request_texts(body))
    return oip.infer_response(name, body, predictions)
