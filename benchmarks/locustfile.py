"""Locust users for the load test: each posts a review to ``/v1/predict`` as soon as the last is answered.

Texts come from the JSON list named by ``LOAD_TEXTS`` (``benchmarks.load`` writes it). Any answer
other than 200 with a label counts as a failure.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from locust import FastHttpUser, constant, task

TEXTS: list[str] = json.loads(Path(os.environ["LOAD_TEXTS"]).read_text(encoding="utf-8"))


class Reviewer(FastHttpUser):
    """One client sending one request at a time, with no think time."""

    wait_time = constant(0)

    @task
    def predict(self) -> None:
        """Classify a random review."""
        text = random.choice(TEXTS)
        with self.client.post("/v1/predict", json={"text": text}, catch_response=True) as response:
            if response.status_code != 200 or "label" not in (response.json() or {}):
                response.failure(f"status {response.status_code}: {response.text[:200]}")
