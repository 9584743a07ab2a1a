"""The local spend queue file: appends survive a reopen, a torn tail is skipped, commits resume and compact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from switchyard_auth.spend_file import Position, SpendLog, claim_directory, frame


def payloads(start: int, stop: int) -> list[bytes]:
    return [f"record-{i}".encode() for i in range(start, stop)]


def read_all(spend_log: SpendLog) -> list[bytes]:
    found: list[bytes] = []
    while batch := spend_log.read(3).payloads:
        found += batch
    return found


def reopen(spend_log: SpendLog, directory: Path, **options: int) -> SpendLog:
    """Close and open again, as a restarted process would."""
    spend_log.close()
    return SpendLog.open(directory, **options)


def test_appended_records_are_read_back_in_order_after_a_reopen(tmp_path: Path) -> None:
    spend_log = SpendLog.open(tmp_path)
    spend_log.append(payloads(0, 4))
    spend_log.append(payloads(4, 7))

    spend_log = reopen(spend_log, tmp_path)

    assert read_all(spend_log) == payloads(0, 7)
    spend_log.close()


@pytest.mark.parametrize(
    "torn",
    [frame(b"record-torn")[:3], frame(b"record-torn")[:10], frame(b"record-torn")[:-1]],
    ids=["inside-the-length", "inside-the-payload", "last-byte-missing"],
)
def test_a_torn_last_record_is_skipped_and_appends_continue_after_the_last_whole_one(
    tmp_path: Path, torn: bytes
) -> None:
    spend_log = SpendLog.open(tmp_path)
    spend_log.append(payloads(0, 3))
    spend_log.close()
    # A crash in the middle of an append: part of a record reached the disk.
    (segment,) = tmp_path.glob("*.log")
    with segment.open("ab") as file:
        file.write(torn)

    spend_log = SpendLog.open(tmp_path)
    spend_log.append(payloads(3, 5))
    spend_log = reopen(spend_log, tmp_path)

    assert read_all(spend_log) == payloads(0, 5)
    spend_log.close()


def test_a_record_with_a_wrong_checksum_is_not_delivered(tmp_path: Path) -> None:
    spend_log = SpendLog.open(tmp_path)
    spend_log.append(payloads(0, 2))
    spend_log.close()
    (segment,) = tmp_path.glob("*.log")
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF  # the last record's payload no longer matches its checksum
    segment.write_bytes(bytes(data))

    spend_log = SpendLog.open(tmp_path)

    assert read_all(spend_log) == payloads(0, 1)
    spend_log.close()


def test_a_restart_resumes_after_the_committed_offset(tmp_path: Path) -> None:
    spend_log = SpendLog.open(tmp_path)
    spend_log.append(payloads(0, 10))
    first = spend_log.read(4)
    spend_log.commit(first.end)
    spend_log.read(3)  # read, but the process dies before the database has them

    spend_log = reopen(spend_log, tmp_path)

    assert first.payloads == payloads(0, 4)
    assert read_all(spend_log) == payloads(4, 10)
    spend_log.close()


def test_the_committed_offset_leaves_no_temporary_file(tmp_path: Path) -> None:
    spend_log = SpendLog.open(tmp_path)
    spend_log.append(payloads(0, 2))
    spend_log.commit(spend_log.read(1).end)
    spend_log.close()

    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".log") == ["committed"]
    assert SpendLog.open(tmp_path).committed == Position(1, len(frame(b"record-0")))


def test_segments_rotate_and_are_deleted_once_committed(tmp_path: Path) -> None:
    segment_bytes = 3 * len(frame(b"record-0"))
    spend_log = SpendLog.open(tmp_path, segment_bytes=segment_bytes)
    for i in range(10):
        spend_log.append(payloads(i, i + 1))
    assert len(list(tmp_path.glob("*.log"))) == 4

    half = spend_log.read(5)
    spend_log.commit(half.end)
    assert len(list(tmp_path.glob("*.log"))) == 3
    rest = spend_log.read(100)
    spend_log.commit(rest.end)

    assert half.payloads + rest.payloads == payloads(0, 10)
    assert [p.name for p in tmp_path.glob("*.log")] == [f"{spend_log.end.segment:020d}.log"]
    spend_log = reopen(spend_log, tmp_path, segment_bytes=segment_bytes)
    assert read_all(spend_log) == []
    spend_log.append(payloads(10, 11))
    assert read_all(spend_log) == payloads(10, 11)
    spend_log.close()


def test_a_crash_between_commit_and_delete_deletes_the_passed_segment_on_open(tmp_path: Path) -> None:
    spend_log = SpendLog.open(tmp_path, segment_bytes=1)
    spend_log.append(payloads(0, 1))
    spend_log.append(payloads(1, 2))
    spend_log.close()
    # The committed offset names the second segment, but the first was not deleted yet.
    (tmp_path / "committed").write_text("2 0\n")

    spend_log = SpendLog.open(tmp_path, segment_bytes=1)

    assert spend_log.committed == Position(2, 0)
    assert len(list(tmp_path.glob("*.log"))) == 1
    assert read_all(spend_log) == payloads(1, 2)
    spend_log.close()


def test_each_process_sharing_a_data_dir_claims_its_own_queue_directory(tmp_path: Path) -> None:
    first, first_lock = claim_directory(tmp_path)
    second, second_lock = claim_directory(tmp_path)
    os.close(first_lock)
    third, third_lock = claim_directory(tmp_path)
    os.close(second_lock)
    os.close(third_lock)

    assert first != second
    assert third == first  # a freed directory is taken again, with whatever it still holds
