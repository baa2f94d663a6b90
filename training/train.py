"""Train the sentiment classifier, export it to ONNX, prove the export and write the bundle.

    python -m training.train --config configs/default.toml --data ../shared/data/aclImdb_v1.tar.gz

Writes into ``--output``: ``checkpoint.pt`` (last epoch, for ``--resume``), ``best.pt``,
``metrics.jsonl`` (one line per epoch) and ``bundle/`` (the folder the service loads). The steps
live in their own modules: :mod:`training.data` (archive to token ids), :mod:`training.build`
(the network and its starting weights), :mod:`training.self_training` (teachers' labels),
:mod:`training.loop` (epochs and checkpoints) and :mod:`training.bundle` (export, evaluation, card).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from model.bundle import CARD_FILE, ONNX_FILE
from model.config import ModelConfig
from training.build import build_model
from training.bundle import TrainingRecord, write_bundle
from training.commands import recorded_command
from training.config import ADDED_LATER, RunConfig, TrainConfig, add_arguments, load_run_config
from training.data import DatasetError, fetch_if_missing, prepare_data, resolve_path, sha256_of
from training.distributed import close_world, init_world
from training.loop import fit, set_seed
from training.pretrain import pretraining_summary
from training.self_training import add_pseudo_labels

# Options that change where or how fast a run goes, not the weights it makes
NOT_FINGERPRINTED = {"output", "data", "threads", "device"}


def fingerprint(config: RunConfig) -> str:
    """What decides a bundle's weights: the configuration and the data's sha256 (not where the
    output goes, nor the thread count or device). Equal fingerprints let ``--skip-if-current`` skip."""
    path = resolve_path(config.train.data)
    data = sha256_of(path) if path.is_file() else str(path.resolve())
    defaults = {"train": asdict(TrainConfig()), "model": asdict(ModelConfig(vocab_size=1))}

    def counted(table: str, values: dict) -> dict:
        # a field added after bundles existed counts only when it differs from its default: the
        # bundles made before it keep their fingerprint
        later = ADDED_LATER[table]
        return {k: v for k, v in values.items() if not (k in later and v == defaults[table][k])}

    train_values = counted(
        "train", {k: v for k, v in asdict(config.train).items() if k not in NOT_FINGERPRINTED}
    )
    described = json.dumps(
        {"model": counted("model", config.model), "train": train_values, "data": data}, sort_keys=True
    )
    return hashlib.sha256(described.encode()).hexdigest()


def current_bundle(config: RunConfig) -> Path | None:
    """The output's bundle if it was made from this very configuration and data, else None."""
    bundle = Path(config.train.output) / "bundle"
    try:
        card = json.loads((bundle / CARD_FILE).read_text())
    except (OSError, ValueError):
        return None
    same = card.get("fingerprint") == fingerprint(config) and (bundle / ONNX_FILE).is_file()
    return bundle if same else None


def run(config: RunConfig, resume: bool = False, command: str = "") -> Path | None:
    """The whole pipeline; returns the bundle folder (None on the ranks other than 0 under torchrun)."""
    world = init_world()
    try:
        output = Path(config.train.output)
        output.mkdir(parents=True, exist_ok=True)
        set_seed(config.train.seed)
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        tokenizer, splits, source = prepare_data(config)
        model, embedding_note = build_model(config, tokenizer, splits, world)
        pseudo_note = add_pseudo_labels(config, tokenizer, splits)
        pretraining = pretraining_summary(config.train.init_from)
        if world.size > 1:
            set_seed(config.train.seed + world.rank)  # different dropout masks on each rank
        history, seconds = fit(model, splits, config, output, resume, world)
        if not world.is_main:
            return None
        processes = f", {world.size} processes (torchrun)" if world.size > 1 else ""
        on_gpu = f", on {config.train.device}" if config.train.device != "cpu" else ""
        record = TrainingRecord(
            seconds=round(seconds, 1),
            machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads{processes}{on_gpu}",
            embeddings=embedding_note,
            data_path=source,
            train_size=len(splits.train[1]),
            command=command,
            self_training=pseudo_note,
            pretraining=pretraining,
            fingerprint=fingerprint(config),
        )
        return write_bundle(output / "bundle", model, tokenizer, splits, config, history, record)
    finally:
        close_world(world)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Train, export and bundle the IMDB sentiment LSTM.")
    add_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    parser.add_argument(
        "--skip-if-current",
        action="store_true",
        help="exit at once if OUTPUT/bundle was made from this configuration and data",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="download the official archive to --data's path if no file is there",
    )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if "." in k}
    try:
        config = load_run_config(args.config, overrides)
        if args.download:
            fetch_if_missing(config.train.data)
        if args.skip_if_current and (bundle := current_bundle(config)):
            print(f"{bundle} was made from this configuration and data: nothing to do")
            return
        bundle = run(
            config,
            resume=args.resume,
            command=recorded_command("training.train", argv),
        )
    except (DatasetError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    if bundle is not None:
        print(f"bundle written to {bundle}")


if __name__ == "__main__":
    main()
