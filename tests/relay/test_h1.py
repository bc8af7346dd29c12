"""The sans-IO HTTP/1.1 response parser alone: events for valid inputs, errors for invalid ones,
every split of a chunked response, and the limits."""

from __future__ import annotations

import pytest

from relay.h1 import (
    END_OF_MESSAGE,
    MAX_CHUNK_LINE,
    MAX_HEAD_BYTES,
    MAX_HEADER_LINES,
    MAX_TRAILER_BYTES,
    Data,
    EndOfMessage,
    Event,
    IncompleteResponse,
    ProtocolError,
    ResponseHead,
    ResponseParser,
)

CHUNKED = (b"HTTP/1.1 200 OK\r\nContent-Type: message/ohttp-chunked-res\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n")
TE_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

Summary = tuple[int | None, bytes, bool]


def summarize(events: list[Event]) -> Summary:
    """(status of the one head, body, whether the message ended) — checking the event order."""
    status: int | None = None
    body = b""
    ended = False
    for event in events:
        assert not ended, "no event after EndOfMessage"
        if isinstance(event, ResponseHead):
            assert status is None, "one head per response"
            status = event.status
        elif isinstance(event, Data):
            assert status is not None and event.data, "data only after the head, never empty"
            body += event.data
        else:
            assert isinstance(event, EndOfMessage) and status is not None
            ended = True
    return status, body, ended


def parse(raw: bytes, *, step: int | None = None, eof: bool = False) -> list[Event]:
    parser = ResponseParser()
    events: list[Event] = []
    step = step or max(len(raw), 1)
    for start in range(0, len(raw), step):
        events += parser.feed(raw[start:start + step])
    if eof:
        events += parser.feed_eof()
    return events


@pytest.mark.parametrize(("raw", "eof", "expected"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", False, (200, b"hello", True)),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", False, (404, b"", True)),
    (b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", False, (200, b"ok", True)),  # no reason
    (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", True, (200, b"until the end", True)),
    (b"HTTP/1.1 200 OK\r\n\r\n", True, (200, b"", True)),
    (b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", False, (204, b"", True)),
    (b"HTTP/1.1 304 Not Modified\r\n\r\n", False, (304, b"", True)),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", False, (200, b"x", True)),
    (TE_CHUNKED + b"0\r\n\r\n", False, (200, b"", True)),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
     b"2\r\nab\r\n0\r\n\r\n", False, (200, b"ab", True)),  # TE wins over CL
    (TE_CHUNKED + b"a \t;x=y\r\n0123456789\r\n0\r\n\r\n", False, (200, b"0123456789", True)),
    (CHUNKED, False, (200, b"hello 0123456789", True)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", False, (200, b"short", False)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", False, (None, b"", False)),  # head unfinished
])
def test_valid_responses(raw: bytes, eof: bool, expected: Summary) -> None:
    assert summarize(parse(raw, eof=eof)) == expected
    assert summarize(parse(raw, step=1, eof=eof)) == expected


def test_head_keeps_only_the_fields_the_relay_reads() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nServer: x\r\nCONTENT-TYPE:  Message/OHTTP-res \r\n"
           b"Set-Cookie: a=b\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n")
    head = parse(raw)[0]
    assert isinstance(head, ResponseHead)
    assert head.headers == [("content-type", "Message/OHTTP-res"), ("retry-after", "3"),
                            ("content-length", "0")]
    assert head.media_type == "message/ohttp-res" and head.get("server") is None
    assert head.content_length == 0 and not head.chunked and head.keep_alive


@pytest.mark.parametrize(("raw", "keep_alive"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\n\r\n", False),  # close-delimited
])
def test_keep_alive(raw: bytes, keep_alive: bool) -> None:
    head = parse(raw)[0]
    assert isinstance(head, ResponseHead) and head.keep_alive is keep_alive


@pytest.mark.parametrize("raw", [
    TE_CHUNKED + b"zz\r\n",  # not hex
    TE_CHUNKED + b"1" * 17 + b"\r\n",  # more than 16 hex digits
    TE_CHUNKED + b"-1\r\n",
    TE_CHUNKED + b";ext\r\n",  # no size
    TE_CHUNKED + b"2\r\nabXY",  # no CRLF after the data
    TE_CHUNKED + b"1;" + b"e" * (MAX_CHUNK_LINE + 1),  # size line over the limit, unfinished
    TE_CHUNKED + b"1;" + b"e" * (MAX_CHUNK_LINE + 1) + b"\r\n",  # and finished
    TE_CHUNKED + b"0\r\nT: " + b"t" * MAX_TRAILER_BYTES + b"\r\n\r\n",
    TE_CHUNKED + b"0\r\nT: " + b"t" * MAX_TRAILER_BYTES,  # unfinished trailer over the limit
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: \xd9\xa1\r\n\r\nx",  # a non-ASCII digit
    b"HTTP/1.1 200 OK\r\nContent-Length: 1" + b"0" * 18 + b"\r\n\r\nx",  # absurd length
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",  # whitespace before the colon
    b"HTTP/1.1 200 OK\r\nA : x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",  # obs-fold
    b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",  # bare LF
    b"HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n",  # NUL
    b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"http/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1  200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * (MAX_HEADER_LINES + 1) + b"\r\n",
    b"HTTP/1.1 200 OK\r\nA: " + b"b" * MAX_HEAD_BYTES,  # head never ends
    b"HTTP/1.1 200 OK\r\nA: " + b"b" * MAX_HEAD_BYTES + b"\r\n\r\n",  # ends too late
])
def test_invalid_responses(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(raw)


def test_head_limits_are_inclusive() -> None:
    lines = b"A: b\r\n" * (MAX_HEADER_LINES - 1)
    raw = b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 0\r\n\r\n"
    assert summarize(parse(raw)) == (200, b"", True)
    filler = b"X: " + b"x" * (MAX_HEAD_BYTES - 60) + b"\r\n"
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + filler + b"\r\n"
    assert len(raw) - 4 <= MAX_HEAD_BYTES
    assert summarize(parse(raw)) == (200, b"", True)


@pytest.mark.parametrize("split", range(1, len(CHUNKED)))
def test_chunked_split_at_every_byte_boundary(split: int) -> None:
    parser = ResponseParser()
    events = parser.feed(CHUNKED[:split]) + parser.feed(CHUNKED[split:])
    assert summarize(events) == (200, b"hello 0123456789", True)
    assert parser.done and not parser.extra


def test_content_length_body_is_cut_at_its_length() -> None:
    parser = ResponseParser()
    events = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA")
    assert summarize(events) == (200, b"x", True)
    assert parser.done and parser.extra
    assert parser.feed(b"more") == [] and parser.extra


def test_eof() -> None:
    parser = ResponseParser()
    last = parser.feed(b"HTTP/1.1 200 OK\r\n\r\nabc")[-1]
    assert isinstance(last, Data) and last.data == b"abc" and not parser.done
    assert parser.feed_eof() == [END_OF_MESSAGE] and parser.done
    assert parser.feed_eof() == []
    with pytest.raises(IncompleteResponse) as in_head:
        ResponseParser().feed_eof()
    assert in_head.value.in_head
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\na")
    with pytest.raises(IncompleteResponse) as mid_body:
        parser.feed_eof()
    assert not mid_body.value.in_head


def test_start_readies_the_parser_for_the_next_response() -> None:
    parser = ResponseParser()
    first = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    parser.start()
    assert not parser.done
    second = parser.feed(TE_CHUNKED + b"1\r\nb\r\n0\r\n\r\n")
    assert summarize(first) == (200, b"a", True) and summarize(second) == (200, b"b", True)


def test_a_repeated_head_is_the_same_event_and_another_head_is_parsed_anew() -> None:
    def head_of(raw: bytes) -> ResponseHead:
        event = ResponseParser().feed(raw)[0]
        assert isinstance(event, ResponseHead)
        return event

    ok = b"HTTP/1.1 200 OK\r\nContent-Type: message/ohttp-res\r\nContent-Length: 1\r\n\r\nx"
    first = head_of(ok)
    assert head_of(ok) is first
    other = head_of(ok.replace(b"200 OK", b"404 Not Found"))
    assert other is not first
    assert (other.status, other.headers) == (404, first.headers)
    assert head_of(ok) is not first  # only the last head is kept
    assert head_of(ok).status == 200
    with pytest.raises(ProtocolError):  # a head that fails is never kept
        head_of(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert head_of(ok).status == 200


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",  # the common answer, whole
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",  # an interim head alone: no event, the final one follows
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1",  # more than the answer
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok",  # less
])
def test_an_answer_in_one_piece_gives_the_events_of_any_split(raw: bytes) -> None:
    whole = ResponseParser()
    events = whole.feed(raw)
    split = ResponseParser()
    pieces = [event for start in range(len(raw)) for event in split.feed(raw[start:start + 1])]
    assert summarize(events) == summarize(pieces)
    assert (whole.done, whole.extra) == (split.done, split.extra)
