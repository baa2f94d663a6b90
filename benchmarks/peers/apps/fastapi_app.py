"""The tutorial app: FastAPI and onnxruntime as a tutorial writes them. A sync route (FastAPI runs
it on its thread pool), one ``session.run`` per request, no batcher.

``uvicorn benchmarks.peers.apps.fastapi_app:app``
"""

from fastapi import FastAPI
from pydantic import BaseModel

from benchmarks.peers.apps.onnx_model import SentimentModel

app = FastAPI()
model = SentimentModel.from_env()


class Review(BaseModel):
    """The request body."""

    text: str


@app.post("/predict")
def predict(review: Review) -> dict:
    """The review's label and P(positive)."""
    return model.predict([review.text])[0]
