"""Request and response bodies of the language-model routes (/v1/lm/*)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas import ModelRef, Text

PROMPT = "This movie was"


class NextRequest(BaseModel):
    """A text whose next word to guess."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": PROMPT, "k": 5}]})
    text: Text = Field(description="The text so far; empty means the start of a review.")
    k: int = Field(10, ge=1, le=50, description="How many words to list.")


class WordProbability(BaseModel):
    """A word and the model's probability for it."""

    token: str
    probability: float


class NextResponse(BaseModel):
    """The most likely next words, most likely first (never <pad> or <unk>)."""

    tokens: list[str] = Field(description="The tokens the model read (the text's last ones when it is long).")
    next: list[WordProbability]
    truncated: bool
    model: ModelRef


class ScoreRequest(BaseModel):
    """A text to score."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "A great film.", "top_k": 3}]}
    )
    text: Text = Field(description="The text; its first SENTIMENT_LM_MAX_TOKENS tokens are scored.")
    top_k: int = Field(0, ge=0, le=10, description="Also list the model's k best guesses at each position.")


class ScoredToken(BaseModel):
    """One token's log-probability given the tokens before it."""

    token: str
    log_prob: float = Field(description="Natural log of P(token | tokens before it).")
    surprisal: float = Field(description="-log2 P(token | tokens before it), in bits.")
    unknown: bool = Field(description="The token is outside the vocabulary: scored as <unk>.")
    top: list[WordProbability] | None = Field(None, description="The guesses before this token (with top_k).")


class ScoreResponse(BaseModel):
    """Each token's log-probability and the text's perplexity."""

    tokens: list[ScoredToken]
    perplexity: float = Field(description="exp of the mean negative log-probability.")
    mean_log_prob: float
    truncated: bool
    model: ModelRef


class GenerateBody(BaseModel):
    """A prompt to continue, and how to sample."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prompt": PROMPT, "max_new_tokens": 20, "seed": 7},
                {"prompt": PROMPT, "max_new_tokens": 20, "sentiment": "positive", "candidates": 4},
            ]
        },
    )
    prompt: Text = Field("", description="The review so far; empty means the start of a review.")
    max_new_tokens: int = Field(30, ge=1, description="Tokens to add; at most SENTIMENT_LM_MAX_NEW_TOKENS.")
    temperature: float = Field(
        1.0, ge=0.01, le=5, description="Divides the log-probabilities before sampling."
    )
    top_k: int = Field(40, ge=0, le=20000, description="Sample among the k most likely words (0: all).")
    top_p: float = Field(
        1.0, gt=0, le=1, description="Nucleus sampling: the smallest set holding this probability."
    )
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="The same seed gives the same text.")
    sentiment: Literal["positive", "negative"] | None = Field(
        None, description="Sample several continuations; keep the one the classifier scores highest for it."
    )
    candidates: int = Field(
        4, ge=2, description="Continuations sampled with sentiment (at most the server's cap)."
    )
    stream: bool = Field(False, description="Answer as server-sent events, one per token.")

    @model_validator(mode="after")
    def _stream_alone(self) -> GenerateBody:
        if self.stream and self.sentiment:
            raise ValueError(
                "stream and sentiment cannot be combined: the kept continuation is known only at the end"
            )
        return self


class SteeredSentiment(BaseModel):
    """The classifier's view of the kept continuation."""

    label: Literal["positive", "negative"]
    score: float = Field(description="The classifier's P(label) of prompt + continuation.")
    candidates: int
    scores: list[float] = Field(description="P(label) of every candidate, in sampling order.")


class GenerateResponse(BaseModel):
    """A continuation of the prompt."""

    prompt: str
    text: str = Field(description="The continuation, readable: prompt + text reads as one review.")
    tokens: list[str]
    seed: int = Field(description="The seed used (send it back to get the same text).")
    finish_reason: Literal["length"]
    sentiment: SteeredSentiment | None
    model: ModelRef
