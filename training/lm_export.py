"""The language-model bundle: its ONNX graph, proofs that it equals PyTorch, and its card.

    python -m training.lm_export --checkpoint runs/lm/lm.pt --output models/lm

Graph inputs: ``token_ids`` int64 ``[batch, time]`` and the LSTM state ``h`` and ``c`` float
``[1, batch, hidden]`` (zeros at a review's start). Outputs: ``log_probs`` float
``[batch, time, vocab]``, the log-probabilities of the next word after each input token, and the
state ``h_out``, ``c_out`` after the last one. A whole prefix goes in as one call; generation then
feeds one token and the returned state per step, and never reads the prefix again. The rows of a
batch have one length (candidates of one prompt), so there is no ``sequence_lens``.

Weights are stored as float16 initializers, each cast to float32 once when the session starts
(onnxruntime folds the casts): the network was rounded to float16 at the end of training, so the
stored values are exactly its weights, and the computation is float32 as in PyTorch.
The adaptive softmax is written out as what ``AdaptiveLogSoftmaxWithLoss.log_prob`` computes: the
head's log-softmax for the frequent words, and each cluster's log-softmax plus the head's
log-probability of that cluster.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from model.bundle import onnx_session
from model.tokenizer import Tokenizer
from training.checkpoint import vocabulary_digest
from training.commands import recorded_command
from training.export import OPSET, ExportError, _reorder
from training.lm import WordLanguageModel, load_language_model, perplexity, token_log_probs
from training.lm_corpus import START_ID, load_corpus, sample_test_reviews

LM_CONFIG_PROPERTY = "lm_config"
MODEL_FILE, CARD_FILE, CARD_MARKDOWN, TOKENIZER_FILE = (
    "model.onnx",
    "model_card.json",
    "MODEL_CARD.md",
    "tokenizer.json",
)
PARITY_TOLERANCE = 1e-5  # the classifier export's standard, on probabilities


def _weights(model: WordLanguageModel) -> dict[str, np.ndarray]:
    """Every weight in the graph's layout (ONNX gate order, transposed for MatMul)."""
    lstm = {k: v.detach().numpy() for k, v in model.lstm.state_dict().items()}
    softmax = model.softmax
    weights = {
        "embedding": model.embedding.weight.detach().numpy(),
        "W": _reorder(lstm["weight_ih_l0"], "lstm")[None],  # [1, 4H, E]
        "R": _reorder(lstm["weight_hh_l0"], "lstm")[None],  # [1, 4H, H]
        "B": np.concatenate([_reorder(lstm["bias_ih_l0"], "lstm"), _reorder(lstm["bias_hh_l0"], "lstm")])[
            None
        ],
        "head_weight": softmax.head.weight.detach().numpy().T,  # [H, shortlist + clusters]
        "head_bias": softmax.head.bias.detach().numpy(),
    }
    for i, tail in enumerate(softmax.tail):
        weights[f"tail_{i}_down"] = tail[0].weight.detach().numpy().T  # [H, h_i]
        weights[f"tail_{i}_out"] = tail[1].weight.detach().numpy().T  # [h_i, n_i]
    return weights


def build_lm_onnx(model: WordLanguageModel) -> onnx.ModelProto:
    """The ONNX graph equal to ``model`` (in eval mode)."""
    config, make = model.config, helper.make_node
    weights = _weights(model.eval())
    shortlist = model.softmax.shortlist_size
    nodes = [make("Cast", [f"{name}_f16"], [name], to=TensorProto.FLOAT) for name in weights]
    nodes += [
        make("Gather", ["embedding", "token_ids"], ["embedded"], axis=0),  # [B, T, E]
        make("Transpose", ["embedded"], ["embedded_tbe"], perm=[1, 0, 2]),  # [T, B, E]
        make(
            "LSTM",
            ["embedded_tbe", "W", "R", "B", "", "h", "c"],
            ["Y", "h_out", "c_out"],
            hidden_size=config.hidden_size,
        ),  # Y [T, 1, B, H]
        make("Squeeze", ["Y", "axis_1"], ["Y_tbh"]),
        make("Transpose", ["Y_tbh"], ["outputs"], perm=[1, 0, 2]),  # [B, T, H]
        make("MatMul", ["outputs", "head_weight"], ["head_mm"]),
        make("Add", ["head_mm", "head_bias"], ["head_logits"]),
        make("LogSoftmax", ["head_logits"], ["head_lp"], axis=-1),  # [B, T, shortlist + clusters]
        make("Slice", ["head_lp", "zero", "shortlist_end", "axis_last"], ["shortlist_lp"]),
    ]
    parts = ["shortlist_lp"]
    constants = {"zero": [0], "shortlist_end": [shortlist], "axis_last": [-1], "axis_1": [1]}
    for i in range(len(model.softmax.tail)):
        constants[f"cluster_{i}"], constants[f"cluster_{i}_end"] = [shortlist + i], [shortlist + i + 1]
        nodes += [
            make("Slice", ["head_lp", f"cluster_{i}", f"cluster_{i}_end", "axis_last"], [f"cluster_{i}_lp"]),
            make("MatMul", ["outputs", f"tail_{i}_down"], [f"tail_{i}_hidden"]),
            make("MatMul", [f"tail_{i}_hidden", f"tail_{i}_out"], [f"tail_{i}_logits"]),
            make("LogSoftmax", [f"tail_{i}_logits"], [f"tail_{i}_lp"], axis=-1),
            make(
                "Add", [f"tail_{i}_lp", f"cluster_{i}_lp"], [f"words_{i}_lp"]
            ),  # log P(cluster) + log P(word | cluster)
        ]
        parts.append(f"words_{i}_lp")
    nodes.append(make("Concat", parts, ["log_probs"], axis=-1))  # [B, T, V]
    state = ["one", "batch", config.hidden_size]
    graph = helper.make_graph(
        nodes,
        "word_language_model",
        inputs=[
            helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["batch", "time"]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, state),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, state),
        ],
        outputs=[
            helper.make_tensor_value_info(
                "log_probs", TensorProto.FLOAT, ["batch", "time", config.vocab_size]
            ),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, state),
            helper.make_tensor_value_info("c_out", TensorProto.FLOAT, state),
        ],
        initializer=[
            *(numpy_helper.from_array(w.astype(np.float16), f"{name}_f16") for name, w in weights.items()),
            *(numpy_helper.from_array(np.array(v, np.int64), name) for name, v in constants.items()),
        ],
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="imdb-lstm-lm"
    )
    proto.ir_version = 8
    helper.set_model_props(proto, {LM_CONFIG_PROPERTY: json.dumps(asdict(model.config), sort_keys=True)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def zero_state(batch: int, hidden: int) -> dict[str, np.ndarray]:
    """The state at a review's start."""
    return {"h": np.zeros((1, batch, hidden), np.float32), "c": np.zeros((1, batch, hidden), np.float32)}


def verify_lm_export(model: WordLanguageModel, session, sequences: Sequence[np.ndarray]) -> dict:
    """Prove the graph equals ``model`` on ``sequences`` (token ids of real reviews).

    Two properties, as the largest |Δ probability| over every next-word distribution: the
    whole prefix in one call vs PyTorch; and one token a call, the state carried, vs the whole
    prefix. Raises :class:`ExportError` above :data:`PARITY_TOLERANCE`.
    """
    hidden = model.config.hidden_size
    torch_vs_onnx = stepwise_vs_prefix = log_prob_gap = 0.0
    for sequence in sequences:
        ids = np.concatenate([[START_ID], sequence])[None].astype(np.int64)  # [1, T]
        with torch.no_grad():
            outputs, _ = model.eval()(torch.from_numpy(ids))
            expected = model.log_probs(outputs[0]).numpy()  # [T, V]
        whole = session.run(["log_probs"], {"token_ids": ids, **zero_state(1, hidden)})[0][0]
        state, steps = zero_state(1, hidden), []
        for t in range(ids.shape[1]):
            log_probs, h, c = session.run(None, {"token_ids": ids[:, t : t + 1], **state})
            state = {"h": h, "c": c}
            steps.append(log_probs[0, 0])
        torch_vs_onnx = max(torch_vs_onnx, float(np.abs(np.exp(whole) - np.exp(expected)).max()))
        stepwise_vs_prefix = max(
            stepwise_vs_prefix, float(np.abs(np.exp(np.stack(steps)) - np.exp(whole)).max())
        )
        log_prob_gap = max(log_prob_gap, float(np.abs(whole - expected).max()))
    report = {
        "torch_vs_onnx": torch_vs_onnx,
        "stepwise_vs_prefix": stepwise_vs_prefix,
        "max_log_prob_difference": log_prob_gap,
        "reviews": len(sequences),
        "max_length": max(len(s) for s in sequences),
    }
    if torch_vs_onnx > PARITY_TOLERANCE or stepwise_vs_prefix > PARITY_TOLERANCE:
        raise ExportError(f"the LM's ONNX graph differs from the trained network: {report}")
    return report


def _markdown(card: dict) -> str:
    metrics, corpus, training = card["metrics"], card["corpus"], card["training"]
    size = card["onnx"]["bytes"] / 1e6
    test = f"{metrics['test_reviews']:,} IMDB test reviews ({metrics['test_tokens']:,} tokens)"
    held_out = f"{corpus['validation']['reviews']:,} held-out training reviews"
    seen = f"{training['tokens_seen']:,} tokens seen of {corpus['train']['tokens']:,}"
    return f"""# {card["name"]} {card["version"]}: a forward LSTM language model of IMDB reviews

{card["architecture"]}. {card["parameters"]:,} parameters, stored as float16 ({size:.1f} MB).
Shares the classifier's tokenizer and vocabulary (`tokenizer.json`, sha256 of the vocabulary
`{card["vocabulary_sha256"][:12]}…`).

| | |
|---|---|
| test perplexity | **{metrics["test_perplexity"]}** on {test} |
| over known words only | {metrics["test_perplexity_known_words"]} |
| validation perplexity | {metrics["validation_perplexity"]} ({held_out}) |
| training | {training["minutes"]} min on a shared 2-core CPU, {seen} |

**`<unk>`.** A word outside the 20k-word vocabulary is `<unk>` ({corpus["test"]["unk_share"]:.1%} of test
tokens) and is predicted like any word: it counts in the perplexity. The line "over known words
only" leaves out the positions whose word is `<unk>` (the model still reads them). Each review
is read from a start marker, so its first word is predicted too; its end is not.

Parity (max |Δ probability| over every next-word distribution of {card["parity"]["reviews"]}
validation reviews): onnxruntime vs PyTorch {card["parity"]["torch_vs_onnx"]:.1e}, one token a
step with the state carried vs the whole prefix at once {card["parity"]["stepwise_vs_prefix"]:.1e}.

Made by `{card["command"]}`.
"""


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Export the language model as a served bundle.")
    parser.add_argument("--checkpoint", default="runs/lm/lm.pt", help="lm.pt written by training.lm")
    parser.add_argument("--output", default="models/lm", help="the bundle folder to write")
    parser.add_argument(
        "--tokenizer", default="models/default/tokenizer.json", help="the classifier's vocabulary"
    )
    parser.add_argument("--data", help="IMDB archive (else $IMDB_DATA); read only without the corpus cache")
    parser.add_argument(
        "--test-reviews", type=int, default=2500, help="test reviews the perplexity is measured on"
    )
    parser.add_argument(
        "--parity-reviews", type=int, default=8, help="validation reviews the parity is proven on"
    )
    parser.add_argument("--version", default="1", help="the bundle's version, on its card and at /v1/lm")
    args = parser.parse_args(argv)
    tokenizer = Tokenizer.load(args.tokenizer)
    model, saved = load_language_model(args.checkpoint, tokenizer)
    corpus = load_corpus(
        Path(args.checkpoint).parent / "corpus.npz", args.data, tokenizer, seed=saved["train_args"]["seed"]
    )
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    proto = build_lm_onnx(model)
    onnx.save(proto, str(output / MODEL_FILE))
    parity = verify_lm_export(
        model, onnx_session(output / MODEL_FILE), corpus.validation[: args.parity_reviews]
    )
    shutil.copyfile(args.tokenizer, output / TOKENIZER_FILE)
    card = make_card(model, saved, corpus, args, parity, output, recorded_command("training.lm_export", argv))
    (output / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (output / CARD_MARKDOWN).write_text(_markdown(card))
    print(json.dumps(card["metrics"]))


def make_card(
    model: WordLanguageModel, saved: dict, corpus, args, parity: dict, output: Path, command: str
) -> dict:
    """The bundle's card: what the model is, how it was made (``command``) and measured."""
    test = sample_test_reviews(corpus.test, args.test_reviews)
    scores = token_log_probs(model, test)
    known = [lp[seq != 1] for lp, seq in zip(scores, test, strict=True)]
    watch = token_log_probs(model, corpus.validation)
    config = model.config
    onnx_bytes = (output / MODEL_FILE).read_bytes()
    history = saved["history"]
    return {
        "card_version": 1,
        "name": "imdb-lstm-lm",
        "version": args.version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "architecture": f"embedding {config.embed_dim} -> LSTM {config.hidden_size} -> adaptive softmax "
        f"(clusters at {', '.join(map(str, config.cutoffs))}) over {config.vocab_size:,} words",
        "lm_config": asdict(config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocabulary_sha256": vocabulary_digest(Tokenizer.load(args.tokenizer).vocabulary),
        "start_token": "<pad>",
        "corpus": saved["corpus"],
        "training": {
            "minutes": round(history[-1]["seconds"] / 60, 1),
            "steps": history[-1]["step"],
            "tokens_seen": history[-1]["tokens"],
            "arguments": {k: v for k, v in saved["train_args"].items() if k not in ("data", "output")},
            "history": history,
        },
        "metrics": {
            "test_perplexity": round(perplexity(scores), 2),
            "test_perplexity_known_words": round(perplexity(known), 2),
            "test_reviews": len(test),
            "test_tokens": sum(map(len, test)),
            "validation_perplexity": round(perplexity(watch), 2),
            "unk": "<unk> is a word of the vocabulary: predicted and counted like any other",
        },
        "parity": parity,
        "onnx": {"bytes": len(onnx_bytes), "sha256": hashlib.sha256(onnx_bytes).hexdigest(), "opset": OPSET},
        "command": command,
    }


if __name__ == "__main__":
    main()
