"""The language-model routes: next words, scores and continuations (streamed as server-sent
events on request). Each delegates to :class:`app.lm_service.LMService`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from app.api.deps import KeyHeader, check_api_key
from app.errors import ServiceError, error_body
from app.lm import Sampling
from app.lm_schemas import (
    GenerateBody,
    GenerateResponse,
    NextRequest,
    NextResponse,
    ScoreRequest,
    ScoreResponse,
)
from app.lm_service import Continuation, GenerateRequest, LMService
from app.schemas import ErrorResponse

ERRORS = {status: {"model": ErrorResponse} for status in (401, 404, 413, 422, 429, 504)}
router = APIRouter(prefix="/v1/lm", tags=["language model"], responses=ERRORS)


async def keyed_lm(request: Request, x_api_key: KeyHeader = None) -> LMService:
    """The LM service, behind the API key as traces are."""
    lm: LMService = request.app.state.lm
    check_api_key(lm.sentiment, x_api_key)
    return lm


KeyedLM = Annotated[LMService, Depends(keyed_lm)]


@router.get("", summary="Whether a language model is loaded")
async def status(request: Request) -> dict:
    """``loaded`` and, when it is, the model and the caps; else why not."""
    return request.app.state.lm.status()


@router.post("/next", response_model=NextResponse, summary="The most likely next words")
async def next_words(body: NextRequest, lm: KeyedLM) -> dict:
    """The k most likely words after the text, with their probabilities."""
    return await lm.next_words(body.text, body.k)


@router.post("/score", response_model=ScoreResponse, summary="Log-probability of each token, and perplexity")
async def score(body: ScoreRequest, lm: KeyedLM) -> dict:
    """Each token's log-probability given those before it, and the text's perplexity."""
    return await lm.score(body.text, body.top_k)


@router.post(
    "/generate",
    response_model=GenerateResponse,
    summary="Continue a prompt",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def generate(body: GenerateBody, lm: KeyedLM):
    """A sampled continuation; steered by the classifier with ``sentiment``; streamed with ``stream``."""
    request = GenerateRequest(
        body.prompt,
        body.max_new_tokens,
        Sampling(body.temperature, body.top_k, body.top_p),
        body.seed,
        body.sentiment,
        body.candidates,
    )
    if not body.stream:
        return await lm.generate(request)
    continuation = await lm.start(request)  # errors before the stream are plain JSON errors
    return StreamingResponse(_events(lm, request, continuation), media_type="text/event-stream")


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


async def _events(lm: LMService, request: GenerateRequest, continuation: Continuation) -> AsyncIterator[str]:
    """One ``token`` event per token (its text as it joins the continuation), then ``done``."""
    shown, generation = "", continuation.generation
    try:
        async for token_id in lm.tokens(continuation, request.max_new_tokens):
            text = generation.text()
            yield _event("token", {"token": generation.model.itos[token_id], "text": text[len(shown) :]})
            shown = text
        yield _event("done", await lm.finish(request, continuation))
    except ServiceError as error:  # the status line is sent: the error goes in the stream
        yield _event("error", error_body(error.code, error.message))
