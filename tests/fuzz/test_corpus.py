"""Every file of the seed corpus goes through the demux with the normal suite (fast).

The corpus (``tests/fuzz/corpus/``) seeds the atheris target too: realistic
model replies (fenced, chatty, truncated, wrapped, with escapes) and small
hostile ones. Big hostile inputs are made in code, in ``tests/test_demux.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.checks import check_reply_text, decode_input

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.iterdir())


def test_the_corpus_is_there_and_small() -> None:
    assert len(FILES) >= 20
    assert all(path.stat().st_size <= 16_384 for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_corpus_file(path: Path) -> None:
    text = decode_input(path.read_bytes())
    for n_tasks in (0, 1, 4):
        check_reply_text(text, n_tasks)


@pytest.mark.parametrize(
    ("name", "answers"),
    [
        ("chatty.txt", ["Paris", "It's 4 [see note 1]"]),
        ("fenced-bare.txt", ["Paris", "4"]),
        ("truncated.txt", ["first answer", "second answer", None]),
        ("wrapped-fenced.txt", ["a", None]),
        ("non-string-response.json", ['{"answer":42,"ok":true}', '[1,2,"é"]']),
        ("hostile-lone-surrogate.bin", ["a\udced\udca0\udc80b"]),
    ],
)
def test_corpus_replies_give_the_expected_answers(name: str, answers: list[str | None]) -> None:
    outcomes = check_reply_text(decode_input((CORPUS / name).read_bytes()), len(answers))
    assert [o if isinstance(o, str) else None for o in outcomes] == answers
