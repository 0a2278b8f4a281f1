"""Secret masking: whole texts, bytes, and streams cut into arbitrary chunks."""

import random
import shlex

import pytest

from runbook_lang.evaluation.masking import Masker


def test_every_occurrence_is_masked():
    masker = Masker(["hunter2"])
    assert masker.mask("a hunter2 b hunter2") == "a *** b ***"


def test_longest_secret_wins_where_secrets_overlap():
    masker = Masker(["abc", "abcdef"])
    assert masker.mask("xabcdefx abcx") == "x***x ***x"


def test_shell_quoted_form_is_masked_whole():
    value = "it's a secret"
    masker = Masker([value])
    assert masker.mask(f"echo {shlex.quote(value)}") == "echo ***"
    assert masker.mask(f"echo '{value}'") == "echo '***'"


def test_empty_value_is_ignored():
    masker = Masker([""])
    assert not masker
    assert masker.mask("anything") == "anything"


def test_mask_bytes_handles_utf8_secrets():
    masker = Masker(["pässwörd"])
    assert masker.mask_bytes("x pässwörd y".encode()) == b"x *** y"


def test_secrets_added_later_are_masked():
    masker = Masker()
    assert masker.mask("token") == "token"
    masker.add("token")
    assert masker.mask("token") == "***"


def test_without_secrets_data_passes_through_uncopied():
    masker = Masker()
    data = b"x" * 1000
    stream = masker.stream()
    assert masker.mask_bytes(data) is data
    assert stream.feed(data) is data
    assert stream.flush() == b""


def test_stream_masks_a_secret_split_across_chunks():
    stream = Masker(["pass word"]).stream()
    out = [stream.feed(b"x pass wo"), stream.feed(b"rd y"), stream.flush()]
    assert b"".join(out) == b"x *** y"


def test_stream_holds_back_only_a_possible_secret_start():
    stream = Masker(["hunter2"]).stream()
    # A display must not wait for bytes that cannot begin a secret.
    assert stream.feed(b"waiting for health check\n") == b"waiting for health check\n"
    assert stream.feed(b"almost hun") == b"almost "
    assert stream.feed(b"gry") == b"hungry"


def _random_case(rng: random.Random) -> tuple[list[str], bytes]:
    # A small alphabet makes overlapping and self-overlapping secrets common.
    alphabet = "ab' é"
    secrets = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
        for _ in range(rng.randint(1, 4))
    ]
    data = "".join(rng.choice(alphabet + "xy") for _ in range(rng.randint(0, 120)))
    return secrets, data.encode()


def _feed_in_random_chunks(masker: Masker, data: bytes, rng: random.Random) -> bytes:
    stream = masker.stream()
    clean = masker.mask_bytes(data) == data
    out, emitted, pos = [], 0, 0
    while pos < len(data):
        size = rng.randint(0, 9)
        piece = stream.feed(data[pos : pos + size])
        pos = min(pos + size, len(data))
        emitted += len(piece)
        out.append(piece)
        if clean:  # output bytes are input bytes: the held-back part is measurable
            assert pos - emitted <= masker.longest_bytes - 1
    out.append(stream.flush())
    return b"".join(out)


@pytest.mark.parametrize("seed", range(20))
def test_stream_equals_whole_masking_for_any_chunking(seed):
    rng = random.Random(seed)
    for _ in range(200):
        secrets, data = _random_case(rng)
        masker = Masker(secrets)
        assert _feed_in_random_chunks(masker, data, rng) == masker.mask_bytes(data)


def test_stream_over_large_chunks_matches_whole_masking():
    rng = random.Random(7)
    canary = b"CANARY-0123456789"
    data = bytearray(rng.randbytes(3 << 20))
    for offset in (0, 65536 - 5, (1 << 20) - 1, (2 << 20) - 9, len(data) - len(canary)):
        data[offset : offset + len(canary)] = canary
    data = bytes(data)
    masker = Masker([canary.decode()])
    stream = masker.stream()
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    out = b"".join(stream.feed(p) for p in pieces) + stream.flush()
    assert out == masker.mask_bytes(data)
    assert canary not in out
