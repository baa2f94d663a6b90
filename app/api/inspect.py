"""The inspector's corpus routes: LSTMVis' Match View and each unit's top contexts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import KeyedService, Service
from app.gates import DIRECTIONS
from app.match_index import Unit
from app.schemas import (
    MAX_LAYER,
    MAX_UNIT,
    Direction,
    ErrorResponse,
    MatchIndexInfo,
    MatchRequest,
    MatchResponse,
    UnitContextsResponse,
)

ERRORS = {status: {"model": ErrorResponse} for status in (401, 404, 409, 413, 422, 429, 503, 504)}
router = APIRouter(prefix="/v1/inspect", tags=["inspector"], responses=ERRORS)


@router.get("/index", response_model=MatchIndexInfo, summary="The corpus index")
async def index_info(service: Service) -> dict:
    """Which model, reviews and threshold the corpus index covers; 404 when none is loaded."""
    return service.match_index_info()


@router.post("/match", response_model=MatchResponse, summary="Where the same units turn on")
async def match(body: MatchRequest, service: KeyedService) -> dict:
    """The runs of tokens in the indexed reviews where every one of ``units`` is on, best first."""
    units = [Unit(u.layer, DIRECTIONS.index(u.direction), u.unit) for u in body.units]
    return await service.match(units, body.length, body.k)


@router.get(
    "/units/{layer}/{direction}/{unit}",
    response_model=UnitContextsResponse,
    summary="A unit's top activating contexts",
)
async def unit_contexts(
    layer: Annotated[int, Path(ge=0, le=MAX_LAYER)],
    direction: Direction,
    unit: Annotated[int, Path(ge=0, le=MAX_UNIT)],
    service: KeyedService,
    k: Annotated[int, Query(ge=1, le=50, description="Contexts per side.")] = 10,
) -> dict:
    """The indexed reviews where the unit's hidden state is highest and lowest, at its peak token."""
    return await service.unit_contexts(Unit(layer, DIRECTIONS.index(direction), unit), k)
