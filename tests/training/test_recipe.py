"""The recipes: the shipped chain's steps are the original runs' configurations, and the runner
runs a whole recipe end to end, skips what is current, reruns what changed and resumes."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.training.synthetic import write_tiny_imdb
from training import recipe as recipes
from training import train
from training.config import load_run_config
from training.recipe import Options, Runner, load_recipe

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "recipes" / "shipped.toml"
EXPLORED = ROOT / "recipes" / "explored.toml"
_SPEC = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
hooks = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(hooks)
CHAIN = ["pretrain", "lm-stage1", "v3", "st3", "locked", "distill-locked", "born-again", "round3", "vat"]

# the fingerprints the runs' model cards record: runs 12, 13 and 14 (each shipped before the next)
# and run 15 (the shipped bundle, models/default); runs 8 and 10 (shipped before, from before the
# locked dropout), 16 and 17 (not shipped)
RECORDED = [
    (SHIPPED, "distill-locked", "edd39216904f619f85dbff77f87aca0ca807ae3529f68b73557f992ba912d8c9"),
    (SHIPPED, "born-again", "070bdcbce6c19a64fa57b349c70f9458a621128a1c31634b7e54b35efe7ad970"),
    (SHIPPED, "round3", "54bead43807522ff8c8fd3383ca9d91d759a98e364c9e99dbe8d5bc02c1d36d8"),
    (SHIPPED, "vat", None),  # the shipped card's own
    (EXPLORED, "distill", "695214e9e5e3bf2701d50fbe12930d99489e5ab617093f6fb7adc78e3bce6f4d"),
    (EXPLORED, "adversarial", "60ef701b006dcb581103c84c32e564ad3c5a6837f986baf7cf9cdd07c0dd0846"),
    (EXPLORED, "ngram-teacher", "c5544337f9484dad35e3cc66664065267dbec104ade0e332923b8ea4bd2d45b5"),
    (EXPLORED, "from-shipped", "874c4e8b459a80df1738cd8761ee4fe19f0b7c8607b58a149191f5658edb866c"),
]


@pytest.mark.parametrize(("path", "step", "expected"), RECORDED)
def test_each_step_is_the_original_runs_configuration(tmp_path, monkeypatch, path, step, expected) -> None:
    card = json.loads((ROOT / "models/default/model_card.json").read_text())
    archive = tmp_path / "aclImdb_v1.tar.gz"
    archive.write_bytes(b"stands in for the archive whose sha256 the card records")
    monkeypatch.setattr(train, "sha256_of", lambda _: card["dataset"]["sha256"])
    loaded = load_recipe(path)
    config = Runner(loaded, Options(data=str(archive))).config(loaded.step(step))
    assert train.fingerprint(config) == (expected or card["fingerprint"])


def test_the_shipped_recipe_is_the_chain_in_order() -> None:
    assert load_recipe(SHIPPED).names == CHAIN
    assert load_recipe(EXPLORED).names[: len(CHAIN)] == CHAIN  # included first


def test_until_runs_a_step_and_only_what_it_reads_from() -> None:
    runner = Runner(load_recipe(EXPLORED), Options(until="distill"))
    assert [s.name for s in runner.steps()] == ["pretrain", "lm-stage1", "v3", "st3", "default", "distill"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[[step]]\nname = "a"\nstart = "b"\n', "reads 'b', which is no earlier step or path"),
        ('[[step]]\nname = "a"\n[[step]]\nname = "a"\n', "a name of its own"),
        ('[[step]]\nname = "a"\nextends = "z"\n', "extends 'z', which is no earlier step"),
        ('[[step]]\nname = "a"\nkind = "fly"\n', "kind must be one of"),
        ('[[step]]\nname = "a"\nstrat = "b"\n', "unknown keys \\['strat'\\]"),
    ],
)
def test_a_wrong_recipe_is_refused_naming_the_step(tmp_path, text: str, error: str) -> None:
    (tmp_path / "r.toml").write_text(text)
    with pytest.raises(ValueError, match=error):
        load_recipe(tmp_path / "r.toml")


# every step one short epoch of a tiny network on the tiny folder's reviews
TINY = {
    "model.embed_dim": 8,
    "model.hidden_size": 4,
    "train.epochs": 1,
    "train.limit_reviews": 60,
    "train.max_tokens": 48,
    "train.batch_size": 16,
    "train.vocab_size": 100,
    "train.word2vec_epochs": 1,
}


def test_the_shipped_recipe_end_to_end(tmp_path, capsys) -> None:
    data = write_tiny_imdb(tmp_path / "imdb")
    options = Options(data=str(data), output=tmp_path / "runs", overrides=TINY, threads=1)
    shipped = load_recipe(SHIPPED)

    assert Runner(shipped, options).run() == dict.fromkeys(CHAIN, "run")
    records = {name: recipes.read_record(tmp_path / "runs" / name) for name in CHAIN}
    assert {record["status"] for record in records.values()} == {"done"}
    vat = records["vat"]
    assert vat["id"] == "15" and vat["device"] == "cpu" and vat["cpu_seconds"] > 0
    assert 0 <= vat["validation_accuracy"] <= 1 and vat["metrics"]["epochs_run"] == 1
    assert "forward_perplexity" in records["pretrain"]["metrics"]
    assert (tmp_path / "runs" / "vat" / "bundle" / "model.onnx").is_file()
    # the history page's hook renders the run records as it renders models/history.toml
    table = hooks.runs_table(hooks.load_records(tmp_path / "runs"))
    assert all(f"| {record['id']} |" in table for record in records.values())

    # a second invocation finds every step current
    assert Runner(shipped, options).run() == dict.fromkeys(CHAIN, "skip")

    # a changed step reruns with the steps downstream of it, and no other
    changed = tmp_path / "shipped.toml"
    lower_rate = 'start = "born-again"\ntrain = { learning_rate = 4e-4 }\n'
    changed.write_text(SHIPPED.read_text().replace('start = "born-again"\n', lower_rate))
    round3_record = tmp_path / "runs" / "round3" / "run-record.json"
    before = round3_record.read_text()
    planned = Runner(load_recipe(changed), replace(options, dry_run=True)).run()
    assert round3_record.read_text() == before  # a dry run writes nothing
    expected = {name: "run" if name in ("round3", "vat") else "skip" for name in CHAIN}
    assert planned == expected
    assert Runner(load_recipe(changed), options).run() == expected

    # an interrupted step resumes from its last epoch's checkpoint
    record = recipes.read_record(tmp_path / "runs" / "vat")
    recipes.write_record(tmp_path / "runs" / "vat", {**record, "status": "running"})
    shutil.rmtree(tmp_path / "runs" / "vat" / "bundle")
    assert Runner(load_recipe(changed), options).run() == {**dict.fromkeys(CHAIN, "skip"), "vat": "resume"}
    assert recipes.read_record(tmp_path / "runs" / "vat")["resumed"] is True
    assert "resumed after epoch 1" in capsys.readouterr().out


def test_the_command_lists_what_it_would_run(tmp_path, capsys) -> None:
    data = write_tiny_imdb(tmp_path / "imdb", per_label=4, unlabelled=4)
    settings = ["--set", "train.epochs=1", "--set", "model.cell=gru"]
    recipes.main([str(SHIPPED), "--data", str(data), "--output", str(tmp_path), "--dry-run", *settings])
    out = capsys.readouterr().out
    assert "[1/9] pretrain (pretrain): run (no run record)" in out
    assert "[9/9] vat (train): run (upstream born-again, distill-locked, lm-stage1, round3 reruns)" in out
    assert "would run 9 of 9 steps" in out
    assert not (tmp_path / "pretrain").exists()
    with pytest.raises(SystemExit, match="no step named 'nine'"):
        recipes.main([str(SHIPPED), "--data", str(data), "--until", "nine", "--dry-run"])
    with pytest.raises(SystemExit):
        recipes.main([str(SHIPPED), "--set", "epochs=1"])


def test_a_gpu_is_used_only_when_asked_and_present(monkeypatch) -> None:
    assert (
        Runner(load_recipe(SHIPPED), Options()).config(load_recipe(SHIPPED).step("vat")).train.device == "cpu"
    )
    monkeypatch.setattr(recipes.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="--device cuda: no GPU is visible to torch here"):
        recipes.main([str(SHIPPED), "--device", "cuda", "--dry-run"])
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        load_run_config(None, {"train.device": "tpu"})
