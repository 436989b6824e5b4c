"""One algorithm, two languages: the vectors the browser's verifier is tested against
(tests/vectors/draw-vectors.json) are what utils/draw.py says today.

Chromium runs the browser's verifier on them (tests/browser/test_draw_page.py); where node is
installed, it runs them here too (a quicker loop while editing the JavaScript; CI relies on
Chromium, which it always has).
"""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.vectors import generate


def test_the_committed_vectors_are_what_the_python_verifier_says_now():
    assert generate.PATH.read_text(encoding="utf-8") == generate.render(), (
        "tests/vectors/draw-vectors.json is stale: run python -m tests.vectors.generate"
    )


def test_the_vectors_cover_honest_chains_and_every_forgery_class():
    vectors = json.loads(generate.PATH.read_text(encoding="utf-8"))
    names = [vector["name"] for vector in vectors["chains"]]
    for forgery in ("A:", "B:", "C:", "D:", "E:", "F:", "G:"):
        assert any(name.startswith(forgery) for name in names), forgery
    refused = [v for v in vectors["chains"] if v["python"]["problems"]]
    honest = [v for v in vectors["chains"] if not v["python"]["problems"]]
    assert len(refused) >= 40 and len(honest) >= 8
    # Where Python needs BLS to refuse, the browser is expected to leave only the signature.
    only_bls = [v for v in refused if not v["browser"]["problems"]]
    assert [v["name"] for v in only_bls] == ["another round's signature (only BLS can tell)"]
    assert only_bls[0]["browser"]["unchecked"] == ["signature", "signature"]


NODE = shutil.which("node")

if NODE is not None:  # defined where node is installed; Chromium runs the same vectors anyway

    def test_node_gives_pythons_answer_on_every_vector():
        done = subprocess.run(
            [NODE, str(generate.PATH.parent / "run-vectors.js"), str(generate.PATH)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        result = json.loads(done.stdout)
        assert result["failures"] == [], result["failures"][:3]
        assert result["checked"] >= 100
        assert done.returncode == 0
