"""Tests for bridgehost.state.calllog: the per-call append-only event log."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bridgehost.state import CallLog, default_paths, list_call_logs
from bridgehost.state.calllog import _TAIL_CHUNK


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def seqs(log: CallLog) -> list[int]:
    return [event["seq"] for event in log.read().events]


def test_append_then_read_in_order(tmp_path: Path) -> None:
    path = default_paths(tmp_path).call_log("call-1")
    events = [
        {"type": "call.started", "seq": 1},
        {"type": "transcript.user.final", "seq": 2, "text": "hallo\nZoë ☎", "at": 1.5},
        {"type": "call.ended", "seq": 3, "reason": None},
    ]
    with CallLog(path) as log:
        for event in events:
            log.append(event)
    result = CallLog(path).read()
    assert result.events == events
    assert not result.torn_tail and result.bad_lines == ()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4  # exactly one line per event
    assert json.loads(lines[1]) == events[1]
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700


def test_reopen_appends_after_existing_lines(tmp_path: Path) -> None:
    log = CallLog(tmp_path / "c" / "events.jsonl")
    log.append({"seq": 1})
    log.close()
    log.append({"seq": 2})  # reopens
    CallLog(log.path).append({"seq": 3})
    assert seqs(log) == [1, 2, 3]
    assert log.repaired_bytes == 0


def test_oversized_and_invalid_events_are_refused(tmp_path: Path) -> None:
    log = CallLog(tmp_path / "events.jsonl", max_line_bytes=100)
    log.append({"seq": 1, "text": "x" * 50})
    with pytest.raises(ValueError, match=r"'big' is \d+ bytes .* limit of 100 bytes"):
        log.append({"type": "big", "text": "x" * 100})
    with pytest.raises(ValueError):
        log.append({"seq": float("nan")})
    with pytest.raises(TypeError):
        log.append({"seq": object()})
    with pytest.raises(TypeError):
        log.append(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert seqs(log) == [1]
    assert CallLog(tmp_path / "x.jsonl").max_line_bytes == 256 * 1024


def test_torn_tail_is_reported_then_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with CallLog(path) as log:
        log.append({"seq": 1})
        log.append({"seq": 2})
    fragment = b'{"seq":3,"text":"half writ'
    with open(path, "ab") as file:
        file.write(fragment)
    before = path.read_bytes()
    result = CallLog(path).read()
    assert [e["seq"] for e in result.events] == [1, 2] and result.torn_tail
    assert path.read_bytes() == before  # reading never modifies
    log = CallLog(path)
    log.append({"seq": 3})
    assert log.repaired_bytes == len(fragment)
    result = log.read()
    assert [e["seq"] for e in result.events] == [1, 2, 3] and not result.torn_tail


@pytest.mark.parametrize("size", [10, _TAIL_CHUNK + 10, 3 * _TAIL_CHUNK])
def test_torn_tail_without_any_newline(tmp_path: Path, size: int) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"{" + b"x" * (size - 1))
    assert CallLog(path).read().torn_tail
    with CallLog(path) as log:
        log.append({"seq": 1})
    assert log.repaired_bytes == size
    assert path.read_bytes() == b'{"seq":1}\n'


def test_long_torn_tail_after_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with CallLog(path) as log:
        log.append({"seq": 1})
    with open(path, "ab") as file:
        file.write(b"\0" * (2 * _TAIL_CHUNK + 5))  # zero-filled tail after a power loss
    with CallLog(path) as log:
        log.append({"seq": 2})
    assert seqs(log) == [1, 2]


def test_corrupt_middle_line_is_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"seq":1}\nnot json\n[1,2]\n\n\xff\xfe\n{"seq":2}\n')
    result = CallLog(path).read()
    assert [e["seq"] for e in result.events] == [1, 2]
    assert result.bad_lines == (2, 3, 4, 5)
    assert not result.torn_tail


def test_missing_log_and_bad_call_id(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CallLog(tmp_path / "nope.jsonl").read()
    with pytest.raises(ValueError, match="invalid call id"):
        CallLog.for_call(tmp_path, "../x")
    assert CallLog.for_call(tmp_path, "c1").path == tmp_path / "c1" / "events.jsonl"


def test_list_call_logs(tmp_path: Path) -> None:
    calls = default_paths(tmp_path).calls_dir
    assert list_call_logs(calls) == []
    for call_id in ["b2", "a1"]:
        CallLog.for_call(calls, call_id).append({"seq": 1})
    (calls / "empty").mkdir()
    (calls / "not.valid").mkdir()
    (calls / "not.valid" / "events.jsonl").write_text("{}\n")
    (calls / "stray-file").write_text("")
    assert list_call_logs(calls) == ["a1", "b2"]


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from bridgehost.state import CallLog

    log = CallLog(sys.argv[1])
    stop_after = int(sys.argv[2])
    seq = 0
    while True:
        seq += 1
        log.append({"type": "transcript", "seq": seq, "pad": "x" * (seq % 7) * 1000})
        sys.stdout.write(f"{seq}\\n")  # acknowledged: append has returned
        sys.stdout.flush()
        if seq == stop_after:
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


def run_child(path: Path, stop_after: int, kill_after: int | None) -> list[int]:
    """Run the appending child; return the seqs it acknowledged before it died."""
    acked: list[int] = []
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(stop_after)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            if kill_after is not None:
                while len(acked) < kill_after:
                    line = proc.stdout.readline()
                    assert line, "child exited early"
                    acked.append(int(line))
                os.kill(proc.pid, signal.SIGKILL)  # lands at an arbitrary point of the loop
            acked.extend(int(line) for line in proc.stdout.read().split())
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
    return acked


@pytest.mark.parametrize(("stop_after", "kill_after"), [(150, None), (10**9, 150)])
def test_every_acknowledged_event_survives_sigkill(
    tmp_path: Path, stop_after: int, kill_after: int | None
) -> None:
    path = tmp_path / "calls" / "c1" / "events.jsonl"
    acked = run_child(path, stop_after, kill_after)
    assert len(acked) >= 150
    result = CallLog(path).read()
    logged = [e["seq"] for e in result.events]
    assert result.bad_lines == ()
    assert logged == list(range(1, len(logged) + 1))  # in order, no gaps, no duplicates
    assert set(acked) <= set(logged)
    # A new writer (the restarted gateway) continues the same log cleanly.
    with CallLog(path) as log:
        log.append({"type": "call.ended", "seq": len(logged) + 1})
    after = CallLog(path).read()
    assert [e["seq"] for e in after.events] == [*logged, len(logged) + 1]
    assert not after.torn_tail
