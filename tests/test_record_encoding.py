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


def test_a_failed_encoding_leaves_nothing_behind():
    """A value that cannot be turned into text fails its record; the next record that holds
    the same containers is encoded as usual, not taken for a circular reference."""
    import pytest

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text for this")

    encode = compact_encoder()
    record = {"step": "a", "detail": [1, {"bad": Unprintable()}]}
    with pytest.raises(RuntimeError):
        encode(record)
    record["detail"][1]["bad"] = "fine"
    assert encode(record) == json.dumps(record, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(st.binary(max_size=300),
                      st.integers(min_value=(1 << 16) - 2, max_value=(1 << 16) + 2).map(
                          lambda size: b"r" * size)))
def test_digests_of_any_size_are_sha256(data):
    """Short texts are hashed without OpenSSL, long ones with it: the digests are SHA-256."""
    import hashlib

    from runbook_lang.digest import sha256_hex

    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
