"""Codec: round-trips, frame layout, and every kind of bad frame."""

from __future__ import annotations

import datetime as dt
import enum

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.domain.model import Side, Signal, Tick, TickBatch
from workbench.exceptions import CodecError
from workbench.messaging import codec
from workbench.messaging.codec import Ack, Command, EndOfStream, Event, Heartbeat, Marker, Resync

names = st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=12)
ints = st.integers(min_value=0, max_value=2**62)
prices = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False)


@st.composite
def tick_batches(draw) -> TickBatch:
    n = draw(st.integers(0, 50))
    return TickBatch(
        draw(names),
        draw(ints),
        draw(st.lists(ints, min_size=n, max_size=n)),
        draw(st.lists(prices, min_size=n, max_size=n)),
        draw(st.lists(prices, min_size=n, max_size=n)),
    )


signals = st.builds(
    lambda strategy_id, seq, **kw: Signal(Signal.make_id(strategy_id, seq), strategy_id, seq, **kw),
    strategy_id=names,
    seq=st.integers(min_value=1, max_value=2**62),
    symbol=names,
    side=st.sampled_from(Side),
    qty=prices,
    price=prices,
    ts_ns=ints,
    reason=st.text(max_size=10),
    condition_id=st.text(max_size=10),
    origin_ns=ints,
)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=8)
    | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)
last_ticks = st.builds(Tick, names, ints, prices, st.just(0.0) | prices, ints)
payloads = st.one_of(
    tick_batches(),
    last_ticks,
    signals,
    st.builds(EndOfStream, names, ints, ints),
    st.builds(
        Heartbeat, names, ints, names, st.dictionaries(names, ints), st.dictionaries(names, plain)
    ),
    st.builds(Event, names, st.dictionaries(names, plain)),
    st.builds(Ack, names, ints),
    st.builds(Ack, names, st.just(10), st.just(((1, 2), (5, 5), (7, 10)))),
    st.builds(Resync, names, ints),
    st.builds(Command, names, st.dictionaries(names, plain)),
    st.builds(Marker, ints),
)


@given(payloads, names, ints, ints, ints)
def test_every_message_kind_round_trips(payload, sender, epoch, seq, sent_ns):
    env = codec.decode(codec.encode(payload, sender, epoch, seq, sent_ns))
    assert env.payload == payload
    assert (env.sender, env.epoch, env.seq, env.sent_ns) == (sender, epoch, seq, sent_ns)


def test_topic_frame_comes_first_with_kind_and_symbol():
    frames = codec.encode(TickBatch("EURUSD", 1, [1], [1.1], [1.0]), "gw", 1, 1, 1)
    assert frames[0] == b"tick/EURUSD/"
    assert not frames[0].startswith(codec.topic("tick", "EUR"))  # no prefix collision


def test_a_last_tick_has_its_own_topic_beside_the_ticks():
    last = Tick("EURUSD", 1_700_000_000_000_000_000, 1.1, 2.0, 41)
    frames = codec.encode(last, "gw", 1, 1, 1)
    assert frames[0] == b"last/EURUSD/" and codec.KIND_LAST == "last"
    assert not frames[0].startswith(b"tick/")  # a tick subscriber (strategy, tap) never sees it
    env = codec.decode(frames)
    assert env.kind == "last" and env.payload == last  # the exchange's ts_ns, exactly
    whole = codec.decode([b"l/", _body(*LAST_HEADER, "X", 3, 5, 100, 1)]).payload
    assert (whole.price, whole.size) == (100.0, 1.0) and type(whole.price) is float


def test_body_carries_schema_version_first():
    frames = codec.encode(Marker(1), "gw", 1, 1, 1)
    assert msgpack.unpackb(frames[1])[0] == codec.SCHEMA_VERSION


def test_self_check_passes():
    codec.self_check()


def test_tz_aware_datetime_round_trips_at_microsecond_precision():
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    assert codec.unpack(codec.pack({"when": when})) == {"when": when}


def test_naive_datetime_is_refused():
    with pytest.raises(CodecError, match="naive datetime"):
        codec.pack(dt.datetime(2024, 1, 1))


def test_enum_values_cross_as_their_value():
    class Colour(enum.Enum):
        RED = "red"

    assert codec.unpack(codec.pack([Colour.RED, Side.BUY])) == ["red", "BUY"]


def _body(*items) -> bytes:
    return msgpack.packb(list(items))


GOOD_HEADER = (codec.SCHEMA_VERSION, "tick", "gw", 1, 1, 1)
LAST_HEADER = (codec.SCHEMA_VERSION, "last", "gw", 1, 1, 1)
ACK = (codec.SCHEMA_VERSION, "ack", "ex", 1, 1, 1)
HB = (codec.SCHEMA_VERSION, "hb", "ex", 1, 1, 1)


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param([b"tick/X/"], id="one-frame"),
        pytest.param([b"a", b"b", b"c"], id="three-frames"),
        pytest.param([b"tick/X/", b"\xc1\xc1garbage"], id="not-msgpack"),
        pytest.param([b"tick/X/", codec.encode(Marker(1), "g", 1, 1, 1)[1][:-1]], id="truncated"),
        pytest.param([b"tick/X/", msgpack.packb({"a": 1})], id="not-an-array"),
        pytest.param(
            [b"t/", _body(99, "tick", "gw", 1, 1, 1, "X", 1, [], [], [])], id="other-version"
        ),
        pytest.param([b"t/", _body(1, "nope", "gw", 1, 1, 1)], id="unknown-kind"),
        pytest.param([b"t/", _body(*GOOD_HEADER, "X", 1, [1, 2], [1.0], [1.0, 1.0])], id="ragged"),
        pytest.param([b"t/", _body(*GOOD_HEADER, "X", 1, [1], ["x"], [1.0])], id="string-price"),
        pytest.param([b"t/", _body(*GOOD_HEADER, "X", 1, [1.5], [1.0], [1.0])], id="float-ts"),
        pytest.param([b"t/", _body(*GOOD_HEADER, "X")], id="short-payload"),
        pytest.param(
            [
                b"s/",
                _body(1, "sig", "s", 1, 1, 1, "i", "s", 1, "X", "HOLD", 1.0, 1.0, 1, "", "", 0),
            ],
            id="bad-side",
        ),
        pytest.param(
            [
                b"s/",
                _body(1, "sig", "s", 1, 1, 1, "i", "s", 1, "X", "BUY", -1.0, 1.0, 1, "", "", 0),
            ],
            id="negative-qty",
        ),
        pytest.param([b"t/", _body(1, "tick", 5, 1, 1, 1)], id="sender-not-str"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1, 1, 1.0)], id="last-short"),
        pytest.param([b"l/", _body(*LAST_HEADER, "", 1, 1, 1.0, 1.0)], id="last-no-symbol"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1.0, 1, 1.0, 1.0)], id="last-float-seq"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1, "1", 1.0, 1.0)], id="last-str-ts"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1, 1, 0.0, 1.0)], id="last-zero-price"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1, 1, -2.0, 1.0)], id="last-negative"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1, 1, float("nan"), 1.0)], id="last-nan"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1, 1, float("inf"), 1.0)], id="last-inf"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1, 1, "1", 1.0)], id="last-str-price"),
        pytest.param([b"l/", _body(*LAST_HEADER, "X", 1, 1, 1.0, -1.0)], id="last-neg-size"),
        pytest.param(
            [b"t/", msgpack.packb([1, "evt", "g", 1, 1, 1, "x", 1], use_bin_type=True)],
            id="event-data-not-map",
        ),
        pytest.param([b"t/", b"\xd4\x07\x00"], id="unknown-ext"),
        pytest.param([b"a/", _body(*ACK, "s", 5, [[2, 1]])], id="ack-range-backwards"),
        pytest.param([b"a/", _body(*ACK, "s", 5, [[1, 6]])], id="ack-range-past-upto"),
        pytest.param([b"a/", _body(*ACK, "s", 5, [[0, 1]])], id="ack-range-from-zero"),
        pytest.param([b"a/", _body(*ACK, "s", 5, [[3, 4], [1, 2]])], id="ack-ranges-unordered"),
        pytest.param([b"a/", _body(*ACK, "s", 5, [[1, 2], [2, 3]])], id="ack-ranges-overlap"),
        pytest.param([b"a/", _body(*ACK, "s", 5, [[1]])], id="ack-range-short"),
        pytest.param([b"a/", _body(*ACK, "s", 5, [[1, 1]] * 65)], id="ack-too-many-ranges"),
        pytest.param([b"a/", _body(*ACK, "s", 5, [], 1)], id="ack-too-long"),
        # int(inf) raised OverflowError past the codec: the runner reading it died.
        pytest.param([b"hb/", _body(*HB, "x", float("inf"), "r", {}, {})], id="hb-pid-inf"),
        pytest.param([b"hb/", _body(*HB, "x", 1.5, "r", {}, {})], id="hb-pid-float"),
        pytest.param([b"hb/", _body(*HB, ["x"], 1, "r", {}, {})], id="hb-role-list"),
    ],
)
def test_malformed_frames_raise_codec_error(frames):
    with pytest.raises(CodecError):
        codec.decode(frames)


def test_integral_prices_from_other_senders_are_accepted_as_floats():
    frames = [b"t/", _body(*GOOD_HEADER, "X", 1, [1], [100], [1])]
    batch = codec.decode(frames).payload
    assert batch.price == [100.0] and type(batch.price[0]) is float


@pytest.mark.parametrize("symbol", [[1], {"a": 1}, None, ""])
def test_signal_with_a_symbol_that_is_not_a_string_is_malformed(symbol):
    body = _body(1, "sig", "s", 1, 1, 1, "i", "s", 1, symbol, "BUY", 1.0, 1.0, 1, "", "", 0)
    with pytest.raises(CodecError):
        codec.decode([b"sig/s/", body])


def _signal_body(*order_fields):
    body = ["sr-1:1", "sr-1", 1, "ABC", "BUY", 1.0, 100.0, 5, "entry", "c", 0, *order_fields]
    return [codec.topic(codec.KIND_SIGNAL, "sr-1"), msgpack.packb([1, "sig", "s", 1, 1, 1, *body])]


@pytest.mark.parametrize("sid", ["executor:1", "sr-1:2", "sr-1", "other:1", ""])
def test_a_signal_whose_id_is_not_its_strategy_and_seq_is_malformed(sid):
    body = [sid, "sr-1", 1, "ABC", "BUY", 1.0, 100.0, 5, "entry", "c", 0]
    head = [1, "sig", "s", 1, 1, 1]
    frames = [codec.topic(codec.KIND_SIGNAL, "sr-1"), msgpack.packb([*head, *body])]
    with pytest.raises(CodecError, match="is not 'sr-1':1"):
        codec.decode(frames)


def test_signal_without_order_fields_is_a_market_gtc_order():
    s = codec.decode(_signal_body()).payload
    assert (s.order_type.value, s.order_price, s.tif.value) == ("MARKET", 0.0, "GTC")
    limit = codec.decode(_signal_body("LIMIT", 99.5, "IOC")).payload
    assert (limit.order_type.value, limit.order_price, limit.tif.value) == ("LIMIT", 99.5, "IOC")


@pytest.mark.parametrize(
    "fields",
    [
        ("LIMIT", 0.0, "GTC"),
        ("STOPLIMIT", 1.0, "GTC"),
        ("STOP", 1.0, "FOK"),
        ("LIMIT", float("nan"), "GTC"),
        ("LIMIT", 1.0),
    ],
)
def test_bad_signal_order_fields_are_malformed(fields):
    with pytest.raises(CodecError):
        codec.decode(_signal_body(*fields))


@pytest.mark.parametrize(
    ("seq", "ts_ns", "origin_ns"),
    [(2**63, 5, 0), (0, 5, 0), (-1, 5, 0), (1, 2**63, 0), (1, -5, 0), (1, 5, 2**64 - 1)],
)
def test_a_signal_whose_integers_cannot_be_journaled_is_malformed(seq, ts_ns, origin_ns):
    # SQLite stores signed 64-bit integers: such a signal killed the executor on every
    # restart (its strategy sends it again), holding back every other strategy's orders.
    body = [f"sr-1:{seq}", "sr-1", seq, "ABC", "BUY", 1.0, 100.0, ts_ns, "entry", "c", origin_ns]
    head = [1, "sig", "s", 1, 1, 1]
    frames = [codec.topic(codec.KIND_SIGNAL, "sr-1"), msgpack.packb([*head, *body])]
    with pytest.raises(CodecError, match=r"outside [01] \.\. 2\*\*63-1"):
        codec.decode(frames)
