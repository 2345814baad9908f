"""The length-prefix codec: round trips, arbitrary splits, and the size check on the header."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.errors import FrameTooLarge
from securechat.protocol.frames import HEADER_SIZE, FrameDecoder, encode_frame

MAX_FRAME = 1024
PROPERTY = settings(max_examples=250, deadline=None, derandomize=True, database=None)


def drain(decoder: FrameDecoder) -> list[bytes]:
    """Every complete payload the decoder holds now."""
    payloads = []
    while (payload := decoder.next_frame()) is not None:
        payloads.append(payload)
    return payloads


def test_encode_frame_prefixes_big_endian_length() -> None:
    assert encode_frame(b"hi") == b"\x00\x00\x00\x02hi"
    assert encode_frame(b"x" * 258)[:HEADER_SIZE] == b"\x00\x00\x01\x02"


def test_decoder_round_trips_one_frame() -> None:
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(encode_frame(b'{"type":"ping"}'))
    assert decoder.next_frame() == b'{"type":"ping"}'
    assert decoder.next_frame() is None
    assert decoder.buffered == 0


def test_decoder_reassembles_frames_fed_one_byte_at_a_time() -> None:
    payloads = [b"a", b"hello", bytes(range(256))]
    decoder = FrameDecoder(MAX_FRAME)
    received = []
    for byte in b"".join(encode_frame(p) for p in payloads):
        decoder.feed(bytes([byte]))
        received.extend(drain(decoder))
    assert received == payloads


@pytest.mark.parametrize("split", range(len(encode_frame(b"hello")) + 1))
def test_decoder_reassembles_frame_split_at_any_byte(split: int) -> None:
    data = encode_frame(b"hello")
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(data[:split])
    first = drain(decoder)
    decoder.feed(data[split:])
    assert first + drain(decoder) == [b"hello"]


def test_decoder_returns_many_frames_from_one_feed_in_order() -> None:
    payloads = [str(i).encode() * (i + 1) for i in range(50)]
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(b"".join(encode_frame(p) for p in payloads))
    assert drain(decoder) == payloads
    assert decoder.buffered == 0


def test_decoder_keeps_trailing_partial_frame_for_next_feed() -> None:
    decoder = FrameDecoder(MAX_FRAME)
    second = encode_frame(b"second")
    decoder.feed(encode_frame(b"first") + second[:3])
    assert drain(decoder) == [b"first"]
    assert decoder.buffered == 3
    decoder.feed(second[3:])
    assert drain(decoder) == [b"second"]


@pytest.mark.parametrize("cut", range(HEADER_SIZE))
def test_decoder_waits_for_a_header_cut_short(cut: int) -> None:
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(encode_frame(b"body")[:cut])
    assert decoder.next_frame() is None
    assert decoder.buffered == cut


def test_decoder_waits_for_a_body_cut_short() -> None:
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(encode_frame(b"body")[:-1])
    assert decoder.next_frame() is None
    assert decoder.next_frame() is None
    decoder.feed(b"y")
    assert decoder.next_frame() == b"body"


def test_decoder_accepts_frame_of_exactly_max_frame() -> None:
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(encode_frame(b"x" * MAX_FRAME))
    assert decoder.next_frame() == b"x" * MAX_FRAME


@pytest.mark.parametrize("length", [0, MAX_FRAME + 1, 2**31, 2**32 - 1])
def test_decoder_rejects_bad_length_as_soon_as_header_is_in(length: int) -> None:
    decoder = FrameDecoder(MAX_FRAME)
    header = length.to_bytes(HEADER_SIZE, "big")
    decoder.feed(header[:3])
    assert decoder.next_frame() is None
    decoder.feed(header[3:])
    with pytest.raises(FrameTooLarge) as info:
        decoder.next_frame()
    assert info.value.code == "frame_too_large"
    assert info.value.is_fatal


def test_decoder_does_not_buffer_body_of_4gib_frame() -> None:
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(b"\xff\xff\xff\xff" + b"junk" * 1000)
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()
    assert decoder.buffered == 0


def test_decoder_rejects_oversized_frame_after_valid_ones() -> None:
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(encode_frame(b"ok") + (MAX_FRAME + 1).to_bytes(4, "big"))
    assert decoder.next_frame() == b"ok"
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()


@PROPERTY
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=MAX_FRAME), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10 * MAX_FRAME), max_size=20),
)
def test_decoder_recovers_payloads_whatever_the_chunking(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    decoder = FrameDecoder(MAX_FRAME)
    received = []
    for start, end in itertools.pairwise(bounds):
        decoder.feed(stream[start:end])
        received.extend(drain(decoder))
        assert decoder.buffered <= MAX_FRAME + HEADER_SIZE + (end - start)
    assert received == payloads


@PROPERTY
@given(chunks=st.lists(st.binary(max_size=64), max_size=30))
def test_decoder_on_arbitrary_bytes_yields_payloads_or_frame_too_large(
    chunks: list[bytes],
) -> None:
    decoder = FrameDecoder(64)
    for chunk in chunks:
        decoder.feed(chunk)
        try:
            payloads = drain(decoder)
        except FrameTooLarge:  # any other exception fails the test
            return
        assert all(1 <= len(payload) <= 64 for payload in payloads)
