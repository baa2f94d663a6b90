"""Run a recipe: a chain of declared training steps, resumable, each writing a run record.

    python -m training.recipe recipes/shipped.toml --data ../shared/data/aclImdb_v1.tar.gz

A recipe (TOML) has shared ``[model]`` and ``[train]`` tables and ``[[step]]`` entries, in an
order where every step comes after the steps it reads. A step names its ``kind`` (``train``, the
default, or ``pretrain``, a language model), may ``extend`` an earlier step (taking its tables,
start and teachers, and changing only the keys it gives), and names its inputs: ``start`` (an
earlier step, whose ``best.pt`` or ``lm.pt`` it starts from, or a path) and ``teachers``
(earlier steps, whose bundles label the unlabelled reviews, or paths, or ``ngram``). A recipe
may ``include`` another one: its steps come first and can be extended.

Each step writes into ``OUTPUT/<name>/`` and records its run in ``run-record.json``: the
fingerprint of its inputs (its configuration, the fingerprints and outputs of its upstream
steps, the data's sha256), wall and CPU time, machine, device and metrics. A step whose
outputs exist and whose fingerprint is unchanged is skipped; one that was interrupted resumes
from its last epoch's checkpoint. ``--until STEP`` runs STEP and the steps it reads from,
``--dry-run`` says what would run and why, ``--set model.KEY=VALUE`` changes a key in every
step (a smoke run with tiny dimensions), and ``--device cuda`` trains on a GPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import time
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.bundle import CARD_FILE, ONNX_FILE, TOKENIZER_FILE, load_card
from training.checkpoint import load_checkpoint
from training.config import RunConfig, load_run_config
from training.data import DatasetError, resolve_path, sha256_of
from training.loop import BEST_FILE, CHECKPOINT_FILE, METRICS_FILE
from training.ngram import NGRAM_TEACHER
from training.pretrain import LM_FILE, pretrain
from training.train import NOT_FINGERPRINTED, run

RECORD_FILE = "run-record.json"
KINDS = ("train", "pretrain")
_STEP_KEYS = {"name", "kind", "extends", "start", "teachers", "run", "description", "model", "train"}


@dataclass(frozen=True)
class Step:
    """One declared step: its tables (the recipe's shared ones and its own merged) and inputs."""

    name: str
    kind: str = "train"
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    start: str = ""  # an earlier step's name, or a path
    teachers: tuple[str, ...] = ()  # earlier steps' names, paths, or "ngram"
    run: str = ""  # the run's id in models/history.toml
    description: str = ""

    @property
    def upstream(self) -> tuple[str, ...]:
        """Every input that names a step or a file (``ngram`` is neither)."""
        return tuple(name for name in (self.start, *self.teachers) if name and name != NGRAM_TEACHER)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The files that make the step done, relative to its folder."""
        if self.kind == "pretrain":
            return (LM_FILE,)
        bundle = ("bundle/" + name for name in (ONNX_FILE, TOKENIZER_FILE, CARD_FILE))
        return (BEST_FILE, *bundle)


@dataclass(frozen=True)
class Recipe:
    """The steps of a recipe file, in order, and the folder their outputs go under."""

    path: Path
    steps: tuple[Step, ...]
    output: Path
    shared: Step  # the [model] and [train] tables every step starts from

    def step(self, name: str) -> Step:
        """The step called ``name``; a ValueError naming the known ones otherwise."""
        for step in self.steps:
            if step.name == name:
                return step
        raise ValueError(f"{self.path}: no step named {name!r} (steps: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        """The steps' names, in order."""
        return [step.name for step in self.steps]


def load_recipe(path: Path) -> Recipe:
    """Read and check a recipe file (and the recipe it includes)."""
    data = tomllib.loads(path.read_text())
    unknown = set(data) - {"include", "output", "model", "train", "step"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    included = load_recipe(path.parent / data["include"]) if "include" in data else None
    steps: dict[str, Step] = {step.name: step for step in included.steps} if included else {}
    inherited = included.shared if included else Step("")
    shared = Step(
        "",
        model={**inherited.model, **data.get("model", {})},
        train={**inherited.train, **data.get("train", {})},
    )
    for entry in data.get("step", []):
        step = _declared_step(path, entry, steps, shared)
        for name in step.upstream:
            if name in steps or name.startswith(("/", ".")) or "/" in name:
                continue
            raise ValueError(f"{path}: step {step.name!r} reads {name!r}, which is no earlier step or path")
        steps[step.name] = step
    output = Path(data.get("output", included.output if included else "runs"))
    return Recipe(path, tuple(steps.values()), output, shared)


def _declared_step(path: Path, entry: dict, earlier: dict[str, Step], shared: Step) -> Step:
    """A ``[[step]]`` entry merged over the step it extends, or over the shared tables."""
    name = entry.get("name")
    if not name or name in earlier or name == NGRAM_TEACHER:
        raise ValueError(f"{path}: every step needs a name of its own, not {NGRAM_TEACHER!r} (got {name!r})")
    unknown = set(entry) - _STEP_KEYS
    if unknown:
        raise ValueError(f"{path}: step {name!r} has unknown keys {sorted(unknown)}")
    base = earlier.get(entry.get("extends", ""), shared)
    if "extends" in entry and base is shared:
        raise ValueError(f"{path}: step {name!r} extends {entry['extends']!r}, which is no earlier step")
    kind = entry.get("kind", base.kind)
    if kind not in KINDS:
        raise ValueError(f"{path}: step {name!r}: kind must be one of {KINDS}, not {kind!r}")
    return Step(
        name=name,
        kind=kind,
        model={**base.model, **entry.get("model", {})},
        train={**base.train, **entry.get("train", {})},
        start=entry.get("start", base.start),
        teachers=tuple(entry.get("teachers", base.teachers)),
        run=entry.get("run", ""),
        description=entry.get("description", ""),
    )


@dataclass(frozen=True)
class Options:
    """How to run a recipe: where the data is, what to change in every step, on which device."""

    data: str | None = None
    output: Path | None = None  # default: the recipe's own
    overrides: dict[str, Any] = field(default_factory=dict)  # {"train.epochs": 1, ...}
    device: str = "cpu"
    threads: int = 0
    until: str = ""
    dry_run: bool = False


class Runner:
    """Runs a recipe's steps in order, skipping the current ones; see the module's docstring."""

    def __init__(self, recipe: Recipe, options: Options) -> None:
        self.recipe, self.options = recipe, options
        self.root = options.output or recipe.output
        self._data_digest = ""

    def folder(self, step: Step) -> Path:
        """Where the step writes its outputs and its run record."""
        return self.root / step.name

    def input_path(self, name: str, as_teacher: bool) -> str:
        """The path an input stands for: a step's bundle (as a teacher) or its checkpoint."""
        if name not in self.recipe.names:
            return name  # a path, or "ngram"
        step = self.recipe.step(name)
        if as_teacher:
            return str(self.folder(step) / "bundle")
        return str(self.folder(step) / (LM_FILE if step.kind == "pretrain" else BEST_FILE))

    def config(self, step: Step) -> RunConfig:
        """The step's full configuration: its tables, its inputs' paths, then ``--set``."""
        values = {f"model.{k}": v for k, v in step.model.items()}
        values |= {f"train.{k}": v for k, v in step.train.items()}
        values |= {
            "train.output": str(self.folder(step)),
            "train.data": self.options.data,
            "train.init_from": self.input_path(step.start, as_teacher=False) if step.start else "",
            "train.pseudo_labels": ",".join(self.input_path(t, as_teacher=True) for t in step.teachers),
            "train.device": self.options.device,
            "train.threads": self.options.threads,
        }
        return load_run_config(None, {**values, **self.options.overrides})

    def data_digest(self) -> str:
        """The archive's sha256 (read once); an extracted folder stands for itself by its path."""
        if not self._data_digest:
            path = resolve_path(self.options.data)
            if not path.exists():
                raise DatasetError(f"{path}: no such file or folder")
            self._data_digest = sha256_of(path) if path.is_file() else str(path.resolve())
        return self._data_digest

    def fingerprint(self, step: Step) -> str:
        """What decides the step's outputs: its configuration (without its inputs' paths, where
        its outputs go, the thread count or device), its upstream steps' fingerprints and outputs,
        any input file's sha256, and the data's."""
        config = self.config(step)
        ignored = NOT_FINGERPRINTED | {"init_from", "pseudo_labels"}
        train = {k: v for k, v in asdict(config.train).items() if k not in ignored}
        described = {
            "kind": step.kind,
            "model": config.model,
            "train": train,
            "start": step.start,
            "teachers": list(step.teachers),
            "upstream": {name: self._upstream_digest(name) for name in step.upstream},
            "data": self.data_digest(),
        }
        return sha256_text(json.dumps(described, sort_keys=True))

    def _upstream_digest(self, name: str) -> str:
        if name in self.recipe.names:
            record = read_record(self.folder(self.recipe.step(name)))
            return sha256_text(json.dumps([record.get("fingerprint"), record.get("outputs")], sort_keys=True))
        path = Path(name)
        if path.is_dir() and (path / ONNX_FILE).is_file():
            return sha256_of(path / ONNX_FILE)
        return sha256_of(path) if path.is_file() else name

    def output_digests(self, step: Step) -> dict[str, str] | None:
        """sha256 of each of the step's outputs, or None while one is missing."""
        folder = self.folder(step)
        if not all((folder / name).is_file() for name in step.outputs):
            return None
        return {name: sha256_of(folder / name) for name in step.outputs}

    def plan(self, step: Step, rerun: set[str]) -> tuple[str, str]:
        """What to do with ``step``: ("skip" | "run" | "resume", why), given the steps that rerun."""
        if rerun & set(step.upstream):
            return "run", f"upstream {', '.join(sorted(rerun & set(step.upstream)))} reruns"
        record, fingerprint = read_record(self.folder(step)), self.fingerprint(step)
        if record.get("fingerprint") != fingerprint:
            return "run", "no run record" if not record else "its inputs changed"
        if record.get("status") == "running":
            resumable = step.kind == "train" and (self.folder(step) / CHECKPOINT_FILE).is_file()
            return ("resume", "interrupted") if resumable else ("run", "interrupted before a checkpoint")
        outputs = self.output_digests(step)
        if outputs is None or outputs != record.get("outputs"):
            return "run", "an output is missing or changed"
        return "skip", "current"

    def steps(self) -> list[Step]:
        """The steps to consider, in order: all, or ``--until``'s step and those it reads from."""
        if not self.options.until:
            return list(self.recipe.steps)
        needed, waiting = set(), [self.recipe.step(self.options.until).name]
        while waiting:
            name = waiting.pop()
            if name in self.recipe.names and name not in needed:
                needed.add(name)
                waiting.extend(self.recipe.step(name).upstream)
        return [step for step in self.recipe.steps if step.name in needed]

    def run(self) -> dict[str, str]:
        """Run (or, with ``dry_run``, plan) the steps; returns each step's action."""
        steps, actions, rerun, started = self.steps(), {}, set(), time.monotonic()
        for number, step in enumerate(steps, start=1):
            action, why = self.plan(step, rerun)
            actions[step.name] = action
            prefix = f"[{number}/{len(steps)}] {step.name} ({step.kind})"
            print(f"{prefix}: {action} ({why}); {_elapsed(started)} elapsed", flush=True)
            if action == "skip":
                continue
            rerun.add(step.name)
            if not self.options.dry_run:
                record = self.run_step(step, resume=action == "resume")
                print(
                    f"{prefix}: done in {record['wall_seconds'] / 60:.1f} min; {_summary(record)}", flush=True
                )
        ran = sum(action != "skip" for action in actions.values())
        verb = "would run" if self.options.dry_run else "ran"
        print(f"{verb} {ran} of {len(steps)} steps, skipped {len(steps) - ran}; {_elapsed(started)} in all")
        return actions

    def run_step(self, step: Step, resume: bool) -> dict:
        """Run one step and write its run record (status ``running`` first, ``done`` after)."""
        folder, config = self.folder(step), self.config(step)
        if not resume:
            _clear(folder)
        folder.mkdir(parents=True, exist_ok=True)
        record = self._record_start(step, config, resume)
        write_record(folder, record)
        wall, cpu = time.perf_counter(), time.process_time()
        if step.kind == "pretrain":
            pretrain(config)
        else:
            run(config, resume=resume, command=record["command"])
        record |= {
            "status": "done",
            "finished": _now(),
            "wall_seconds": round(time.perf_counter() - wall, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1),
            "outputs": self.output_digests(step),
        }
        record["minutes"] = round(record["wall_seconds"] / 60, 1)
        record |= step_metrics(step, folder)
        write_record(folder, record)
        return record

    def _record_start(self, step: Step, config: RunConfig, resume: bool) -> dict:
        command = ["python", "-m", "training.recipe", str(self.recipe.path), "--until", step.name]
        for key, value in self.options.overrides.items():
            command += ["--set", f"{key}={json.dumps(value)}"]
        return {
            "id": step.run or step.name,
            "step": step.name,
            "kind": step.kind,
            "recipe": step.description or step.name,
            "command": shlex.join(command),
            "output": str(self.folder(step)),
            "fingerprint": self.fingerprint(step),
            "status": "running",
            "resumed": resume,
            "started": _now(),
            "inputs": {
                "start": config.train.init_from,
                "teachers": config.train.pseudo_labels,
                "data": str(resolve_path(config.train.data)),
            },
            "machine": machine(),
            "device": device_name(config.train.device),
        }


def step_metrics(step: Step, folder: Path) -> dict:
    """The figures a run record carries, with the model history's field names."""
    if step.kind == "pretrain":
        saved = load_checkpoint(folder / LM_FILE)
        final = saved["history"][-1]
        return {"metrics": {k: v for k, v in final.items() if k.endswith("perplexity")}}
    card = load_card(folder / "bundle")
    kept = card["training"]["history"][card["training"]["best_epoch"] - 1]
    return {
        "validation_accuracy": card["metrics"]["validation"]["accuracy"],
        "validation_loss": round(kept["validation_loss"], 4),
        "test_accuracy": card["metrics"]["test"]["accuracy"],
        "metrics": {
            "epochs_run": card["training"]["epochs_run"],
            "best_epoch": card["training"]["best_epoch"],
            "train_seconds": card["training"]["seconds"],
            "validation": card["metrics"]["validation"],
            "test": card["metrics"]["test"],
        },
    }


def machine() -> dict:
    """The machine a step ran on: architecture, processor, cores, torch threads, host name."""
    return {
        "platform": platform.platform(),
        "processor": _processor(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
    }


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    """``cpu``, or ``cuda`` with the GPU's name."""
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def read_record(folder: Path) -> dict:
    """The step's run record, or {} when there is none (or it cannot be read)."""
    try:
        return json.loads((folder / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_record(folder: Path, record: dict) -> None:
    """Write the run record atomically: an interruption leaves the old one or the new one."""
    partial = folder / (RECORD_FILE + ".part")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(folder / RECORD_FILE)


def sha256_text(text: str) -> str:
    """Hex sha256 of a string."""
    return hashlib.sha256(text.encode()).hexdigest()


def _clear(folder: Path) -> None:
    """Remove what an earlier, different run of the step left (checkpoints would be resumed,
    metrics appended to)."""
    for name in (CHECKPOINT_FILE, BEST_FILE, METRICS_FILE, LM_FILE, "lm_metrics.jsonl", RECORD_FILE):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "bundle", ignore_errors=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _elapsed(started: float) -> str:
    return str(dt.timedelta(seconds=round(time.monotonic() - started)))


def _summary(record: dict) -> str:
    if "validation_accuracy" in record:
        return f"validation accuracy {record['validation_accuracy']:.4f}"
    return ", ".join(f"{k} {v}" for k, v in record.get("metrics", {}).items())


def parse_setting(text: str) -> tuple[str, Any]:
    """``train.epochs=1`` -> ("train.epochs", 1): the value read as TOML, else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.startswith(("model.", "train.")):
        raise argparse.ArgumentTypeError(f"expected model.KEY=VALUE or train.KEY=VALUE, got {text!r}")
    try:
        return key, tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return key, value


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Run a recipe's steps in order, skipping current ones.")
    parser.add_argument("recipe", type=Path, help="recipe file, e.g. recipes/shipped.toml")
    parser.add_argument("--data", help="IMDB archive or extracted folder (default: $IMDB_DATA)")
    parser.add_argument("--output", type=Path, help="folder for the steps' folders (default: the recipe's)")
    parser.add_argument("--until", default="", metavar="STEP", help="only STEP and the steps it reads from")
    parser.add_argument("--dry-run", action="store_true", help="list the steps and what would run, and why")
    parser.add_argument("--device", default="cpu", help="torch device to train on: cpu, or cuda for a GPU")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--set",
        dest="settings",
        type=parse_setting,
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="change a key in every step, e.g. --set train.epochs=1 (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device}: no GPU is visible to torch here")
    try:
        recipe = load_recipe(args.recipe)
        options = Options(
            data=args.data,
            output=args.output,
            overrides=dict(args.settings),
            device=args.device,
            threads=args.threads,
            until=args.until,
            dry_run=args.dry_run,
        )
        Runner(recipe, options).run()
    except (DatasetError, ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
