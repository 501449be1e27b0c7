"""The write-ahead log: framing, positions, checkpoints, torn tails, corruption, rotation."""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import pytest

from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.hot.wal_files import WalCorruptionError, WalError, WalLockedError


def payloads(start: int, count: int) -> list[bytes]:
    return [f"record-{i}".encode() * (1 + i % 3) for i in range(start, start + count)]


def frame(payload: bytes) -> bytes:
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def all_records(wal: WriteAheadLog, after: int = 0) -> list[tuple[int, bytes]]:
    return list(wal.records(after=after))


def test_append_returns_positions_and_records_come_back_in_order(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        assert wal.append(payloads(0, 3)) == 3
        assert wal.append(payloads(3, 2)) == 5
        assert wal.synced_position == 0
        assert wal.sync() == 5
        got = all_records(wal)
    assert got == list(enumerate(payloads(0, 5), start=1))


def test_records_after_a_position_and_until(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(payloads(0, 10))
        wal.sync()
        assert [p for p, _ in wal.records(after=7)] == [8, 9, 10]
        assert [p for p, _ in wal.records(after=2, until=4)] == [3, 4]


def test_records_default_to_the_durable_end(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(payloads(0, 2))
        wal.sync()
        wal.append(payloads(2, 2))
        assert [p for p, _ in wal.records()] == [1, 2]
        wal.sync()
        assert [p for p, _ in wal.records()] == [1, 2, 3, 4]


def test_reopen_continues_positions_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(payloads(0, 4))
        wal.sync()
        wal.checkpoint(3, {"binance|BTC/USDT|trade": 1715000000000123})
    with WriteAheadLog(tmp_path) as wal:
        assert wal.last_position == wal.synced_position == 4
        assert wal.checkpoint_position == 3
        assert wal.checkpoint_state == {"binance|BTC/USDT|trade": 1715000000000123}
        assert all_records(wal, after=wal.checkpoint_position) == [(4, payloads(3, 1)[0])]
        assert wal.append([b"next"]) == 5


def test_checkpoint_must_be_durable(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(payloads(0, 2))
        with pytest.raises(WalError, match="durable up to 0"):
            wal.checkpoint(2)


def test_empty_and_oversized_records_are_refused(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        with pytest.raises(WalError, match="0 bytes"):
            wal.append([b"ok", b""])
        assert wal.last_position == 0
        assert wal.append([]) == 0


def test_second_writer_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path), pytest.raises(WalLockedError, match="in use"):
        WriteAheadLog(tmp_path)
    with WriteAheadLog(tmp_path) as wal:  # released on close
        assert wal.last_position == 0


def _only_segment(folder: Path) -> Path:
    (segment,) = sorted(folder.glob("wal-*.log"))
    return segment


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(lambda good: good[:5], id="half-header"),
        pytest.param(lambda good: good[:-4], id="cut-body"),
        pytest.param(lambda good: good[:8] + bytes(len(good) - 8), id="body-never-written"),
        pytest.param(lambda good: bytes(4096), id="zero-filled-blocks"),
        pytest.param(lambda good: good[:-1] + bytes([good[-1] ^ 0xFF]), id="crc-of-last-record"),
    ],
)
def test_torn_tail_is_truncated_on_open(tmp_path: Path, tail: object) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(payloads(0, 5))
    segment = _only_segment(tmp_path)
    intact = segment.stat().st_size
    torn = tail(frame(b"the record a crash cut short"))  # type: ignore[operator]
    with segment.open("ab") as stream:
        stream.write(torn)
    with WriteAheadLog(tmp_path) as wal:
        assert wal.truncated_bytes == len(torn)
        assert segment.stat().st_size == intact
        assert all_records(wal) == list(enumerate(payloads(0, 5), start=1))
        assert wal.append([b"after the crash"]) == 6
        wal.sync()
        assert all_records(wal, after=5) == [(6, b"after the crash")]


def test_corruption_in_the_middle_raises_a_clear_error(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(payloads(0, 6))
    segment = _only_segment(tmp_path)
    data = bytearray(segment.read_bytes())
    offset = len(frame(payloads(0, 1)[0])) + 10  # inside record 2's payload
    data[offset] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(WalCorruptionError) as caught:
        WriteAheadLog(tmp_path)
    message = str(caught.value)
    assert str(segment) in message
    assert "record position 2" in message
    assert "CRC32 mismatch" in message
    assert "repair=True" in message
    # The lock was released by the failed open; repair truncates at the bad record.
    with WriteAheadLog(tmp_path, repair=True) as wal:
        assert wal.last_position == 1
        assert all_records(wal) == [(1, payloads(0, 1)[0])]


def test_impossible_length_followed_by_data_is_corruption(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(payloads(0, 3))
    segment = _only_segment(tmp_path)
    data = bytearray(segment.read_bytes())
    data[0:4] = struct.pack("<I", 0xFFFFFFF0)
    segment.write_bytes(bytes(data))
    with pytest.raises(WalCorruptionError, match="impossible record length"):
        WriteAheadLog(tmp_path)


def test_segments_rotate_by_size_and_are_named_for_their_first_position(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=100) as wal:
        for start in range(0, 40, 4):
            wal.append(payloads(start, 4))
            wal.sync()
        names = [p.name for p in wal.segment_paths()]
        assert len(names) > 3
        firsts = [int(n[4:-4]) for n in names]
        assert firsts[0] == 1
        assert firsts == sorted(firsts)
        assert all((f - 1) % 4 == 0 for f in firsts)  # batches are never split
        assert all_records(wal) == list(enumerate(payloads(0, 40), start=1))
        assert [p for p, _ in wal.records(after=17, until=23)] == list(range(18, 24))
    with WriteAheadLog(tmp_path, segment_bytes=100) as wal:
        assert wal.last_position == 40
        assert all_records(wal) == list(enumerate(payloads(0, 40), start=1))


def test_segments_rotate_by_age(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_max_age_s=0.05) as wal:
        wal.append([b"a"])
        time.sleep(0.06)
        wal.append([b"b"])
        assert [p.name for p in wal.segment_paths()] == [
            "wal-00000000000000000001.log", "wal-00000000000000000002.log",
        ]


def test_old_segments_before_the_checkpoint_are_deleted(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=100, retention_s=3600) as wal:
        for start in range(0, 30, 3):
            wal.append(payloads(start, 3))
        wal.sync()
        segments = wal.segment_paths()
        firsts = [int(p.name[4:-4]) for p in segments]
        wal.checkpoint(firsts[3] - 1)  # segments 0..2 lie wholly before it
        assert wal.delete_old_segments() == []  # younger than the retention
        deleted = wal.delete_old_segments(now=time.time() + 3601)
        assert deleted == segments[:3]
        assert wal.segment_paths() == segments[3:]
        assert wal.first_position == firsts[3]
        assert all_records(wal) == list(enumerate(payloads(0, 30), start=1))[firsts[3] - 1 :]
        wal.checkpoint(30)
        wal.delete_old_segments(now=time.time() + 3601)
        assert wal.segment_paths() == segments[-1:]  # the active segment always stays
        assert wal.append([b"next"]) == 31


def test_corrupt_older_segment_raises_when_read(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=100) as wal:
        for start in range(0, 12, 3):
            wal.append(payloads(start, 3))
        wal.sync()
        first = wal.segment_paths()[0]
    data = bytearray(first.read_bytes())
    data[12] ^= 0x40
    first.write_bytes(bytes(data))
    with WriteAheadLog(tmp_path, segment_bytes=100) as wal:  # only the last segment is checked
        with pytest.raises(WalCorruptionError, match=first.name):
            all_records(wal)
        assert [p for p, _ in wal.records(after=6)] == list(range(7, 13))


def test_missing_records_in_an_older_segment_are_detected(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=100) as wal:
        for start in range(0, 12, 3):
            wal.append(payloads(start, 3))
        wal.sync()
        first = wal.segment_paths()[0]
    os.truncate(first, len(frame(payloads(0, 1)[0])))
    with (
        WriteAheadLog(tmp_path, segment_bytes=100) as wal,
        pytest.raises(WalCorruptionError, match="should reach 6"),
    ):
        all_records(wal)


def test_checkpoint_ahead_of_the_log_is_refused(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(payloads(0, 3))
        wal.sync()
        wal.checkpoint(3)
    segment = _only_segment(tmp_path)
    os.truncate(segment, 0)
    with pytest.raises(WalCorruptionError, match="says position 3 but the log ends at 0"):
        WriteAheadLog(tmp_path)
