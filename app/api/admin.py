"""Operator endpoints: reload the model bundle."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import AdminService
from app.schemas import ErrorResponse, ModelRef

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/reload",
    response_model=ModelRef,
    summary="Serve the bundle folder's current contents",
    responses={status: {"model": ErrorResponse} for status in (401, 404, 409)},
)
async def reload(service: AdminService) -> dict:
    """Load ``SENTIMENT_MODEL_DIR`` again and swap it in once it has answered a warm-up; a bundle
    that fails to load gets a 409 and the model already served stays. Needs the API key (and is
    off without one); ``kill -HUP`` does the same from the host."""
    return await service.reload()
