"""experiments.lm_anchor: the n-gram's scores through KenLM, on the LSTM's own tokens."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from experiments.lm_anchor import UNK_WORD, figures, kenlm_log_probs, words

ITOS = ("<pad>", "<unk>", "good", "film", ".")

# A bigram model written by hand (log10 P; every back-off weight 0), queried from <s>.
ARPA = f"""\\data\\
ngram 1=7
ngram 2=2

\\1-grams:
-1.0\t<unk>
0\t<s>\t0
-1.0\t</s>
-0.5\tgood\t0
-0.7\tfilm\t0
-0.9\t.\t0
-1.1\t{UNK_WORD}\t0

\\2-grams:
-0.3\t<s> good
-0.2\tgood film

\\end\\
"""


def test_words_write_unk_as_a_token_lmplz_accepts() -> None:
    assert words(np.array([2, 1, 3]), ITOS) == f"good {UNK_WORD} film"


def test_kenlm_scores_every_token_from_the_review_start(tmp_path) -> None:
    pytest.importorskip("kenlm", reason="requirements/anchor.txt")
    arpa = tmp_path / "bigram.arpa"
    arpa.write_text(ARPA)
    test = [np.array([2, 3, 4]), np.array([1, 2])]
    scores = kenlm_log_probs(arpa, test, ITOS)
    ln10 = math.log(10)
    np.testing.assert_allclose(scores[0], np.array([-0.3, -0.2, -0.9]) * ln10, rtol=1e-5)
    np.testing.assert_allclose(
        scores[1], np.array([-1.1, -0.5]) * ln10, rtol=1e-5
    )  # @unk@, not KenLM's <unk>
    result = figures(scores, test)  # perplexities rounded to 2 decimals
    assert result["perplexity"] == pytest.approx(
        math.exp((0.3 + 0.2 + 0.9 + 1.1 + 0.5) * ln10 / 5), abs=0.005
    )
    assert result["perplexity_known_words"] == pytest.approx(
        math.exp((0.3 + 0.2 + 0.9 + 0.5) * ln10 / 4), abs=0.005
    )


def test_the_comparison_runs_as_a_user_runs_it_and_the_docs_render_it(tmp_path) -> None:
    """experiments.lm_anchor on a tiny LM run and a given n-gram model: one record with both
    perplexities on the same test tokens, and the docs' table drawn from it."""
    pytest.importorskip("kenlm", reason="requirements/anchor.txt")
    import json

    from experiments import lm_anchor
    from tests.training.synthetic import tiny_lm_run

    tokenizer = tiny_lm_run(tmp_path)
    arpa = tmp_path / "bigram.arpa"
    arpa.write_text(ARPA)
    record = tmp_path / "lm_anchor.json"
    lm_anchor.main(
        ["--checkpoint", str(tmp_path / "run" / "lm.pt"), "--tokenizer", tokenizer, "--arpa", str(arpa),
         "--test-reviews", "4", "--output", str(record)]
    )  # fmt: skip
    result = json.loads(record.read_text())
    assert result["test"]["reviews"] == 4 and result["lstm"]["config"]["hidden_size"] == 16
    lstm, ngram = result["lstm"]["perplexity"], result["kneser_ney"]["perplexity"]
    assert lstm > 1 and ngram > 1 and result["lstm_beats_kneser_ney"] == (lstm < ngram)
    assert result["kneser_ney"]["estimate_seconds"] is None  # given, not estimated
    spec = importlib.util.spec_from_file_location(
        "docs_hooks", Path(__file__).parents[2] / "docs" / "hooks.py"
    )
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    table = hooks.lm_anchor_table(record)
    assert f"| {lstm:.1f} |" in table and f"| {ngram:.1f} |" in table and "--arpa" in table
