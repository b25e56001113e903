"""The packed duplicate check against the obvious reference: a Python set of hex strings."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.data.dedupe import SeenRows, hash_keys


def _hex(n: int) -> str:
    return hashlib.md5(str(n).encode()).hexdigest()


def test_hash_keys_pack_hex_into_two_words() -> None:
    hashes = [_hex(i) for i in range(5)]
    keys = hash_keys(pa.array(hashes))
    assert keys.shape == (5, 2) and keys.dtype == np.uint64
    assert [k.tobytes().hex() for k in keys] == hashes


@pytest.mark.parametrize("bad", ["abc", "z" * 32, None])
def test_hash_keys_refuse_what_is_not_a_hash(bad: str | None) -> None:
    with pytest.raises(ValueError, match="row hashes"):
        hash_keys(pa.array([_hex(1), bad], pa.string()))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 60), max_size=40), max_size=12))
def test_first_sightings_match_a_python_set(chunks: list[list[int]]) -> None:
    seen_reference: set[str] = set()
    seen = SeenRows()
    for chunk in chunks:
        hashes = [_hex(n) for n in chunk]
        expected = []
        for digest in hashes:
            expected.append(digest not in seen_reference)
            seen_reference.add(digest)
        got = seen.first_sightings(hash_keys(pa.array(hashes, pa.string())))
        assert got.tolist() == expected
    assert len(seen) == len(seen_reference)


def test_keys_that_share_their_high_word_stay_apart() -> None:
    high = "0123456789abcdef"
    hashes = [high + f"{i:016x}" for i in range(6)]
    seen = SeenRows(hash_keys(pa.array(hashes[:3])))
    probe = hash_keys(pa.array(hashes))
    assert seen.contains(probe).tolist() == [True, True, True, False, False, False]
    assert seen.first_sightings(probe).tolist() == [False, False, False, True, True, True]
