"""What the property tests (hypothesis) share: their settings and the JSON values they draw.

Every property test is derandomized (the same examples on every run, so CI is deterministic) and
small enough that all of them run in a few seconds; ``HYPOTHESIS_EXAMPLES_FACTOR=10 pytest
tests/utils`` runs ten times as many examples.
"""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis import strategies as st

FACTOR = int(os.environ.get("HYPOTHESIS_EXAMPLES_FACTOR", "1"))


def bounded(examples: int) -> settings:
    """Derandomized, no deadline (the machine may be busy), no example database."""
    return settings(max_examples=examples * FACTOR, deadline=None, derandomize=True, database=None)


# Any JSON document, small: what a draw record holds, or what a forged cursor may carry.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
