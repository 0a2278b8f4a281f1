"""A record's line and the head's text are exactly what json.dumps gives for them.

The writer builds both without json.dumps' per-call set-up (runbook_lang.store.chain);
whatever a record holds, the bytes must not differ, or the chain would hash other text than
a reader re-encoding a record expects.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lang.store.chain import anchor_text, compact_encoder

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.text().map(PurePosixPath))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)


@settings(max_examples=500, deadline=None)
@given(value=values)
def test_a_record_is_encoded_as_json_dumps_would(value):
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    assert compact_encoder()(value) == expected


@given(seq=st.integers(min_value=-1, max_value=10**12),
       digest=st.binary(min_size=32, max_size=32).map(bytes.hex))
def test_the_head_text_is_json_dumps_of_seq_and_hash(seq, digest):
    assert anchor_text(seq, digest) == json.dumps({"seq": seq, "hash": digest})
