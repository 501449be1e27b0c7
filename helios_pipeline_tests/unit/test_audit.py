"""The audit trail: append-only, and ``helios audit verify`` finds edited and deleted rows."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helios_pipeline.cli.main import main
from helios_pipeline.security.audit import AuditLog, chain_hash


@pytest.fixture
def audit_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HELIOS_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "data" / "metadata.sqlite"
    log = AuditLog(path, actor="tester")
    for i in range(5):
        log.record("backfill" if i % 2 == 0 else "credential_use", f"subject {i}", n=i,
                   url="redis://:pw-in-detail@h/0")
    return path


def _tamper(path: Path, sql: str) -> None:
    """What someone with write access to the file does: drop the guard, then change history."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_chain_verifies_and_details_are_masked(audit_db: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify"]) == 0
    assert "Audit trail intact: 5 rows" in capsys.readouterr().out
    entries = AuditLog(audit_db).entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(entries))
    assert entries[0].detail["url"] == "redis://:***@h/0"


def test_rows_cannot_be_changed_through_sql(audit_db: Path) -> None:
    conn = sqlite3.connect(audit_db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET subject = 'x' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    conn.close()


def test_verify_detects_an_edited_row(audit_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tamper(audit_db, "UPDATE audit_log SET detail = '{\"n\":99}' WHERE seq = 3")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "row 3 (backfill subject 2): content does not match its hash (edited)" in out
    assert "BROKEN" in out


def test_verify_detects_a_deleted_row(audit_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tamper(audit_db, "DELETE FROM audit_log WHERE seq = 2")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "rows 2..2 are missing (deleted)" in out
    assert "row 3: prev_hash does not match" in out


def test_verify_detects_a_deleted_last_row(audit_db: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _tamper(audit_db, "DELETE FROM audit_log WHERE seq = 5")
    assert main(["audit", "verify"]) == 1
    assert "rows 5..5 are missing at the end (deleted)" in capsys.readouterr().out


def test_verify_detects_a_rehashed_edit_by_the_next_link(audit_db: Path) -> None:
    log = AuditLog(audit_db)
    forged = log.entries()[1]
    new_hash = chain_hash(forged.prev_hash, forged.seq, forged.at, forged.kind, forged.actor,
                          "forged", forged.detail)
    conn = sqlite3.connect(audit_db)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET subject = 'forged', hash = ? WHERE seq = 2", (new_hash,))
    conn.commit()
    conn.close()
    problems = log.verify().problems
    assert problems == ("row 3: prev_hash does not match row 2's hash (a row before it was "
                        "deleted or edited)",)


def test_listing_filters_by_kind_and_since(audit_db: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--kind", "credential_use"]) == 0
    out = capsys.readouterr().out
    assert "subject 1" in out
    assert "subject 3" in out
    assert "subject 0" not in out
    tomorrow = (datetime.now(tz=UTC) + timedelta(days=1)).date().isoformat()
    assert main(["audit", "--since", tomorrow]) == 0
    assert "No audit entries match" in capsys.readouterr().out
    assert AuditLog(audit_db).entries(since=datetime.now(tz=UTC) - timedelta(hours=1),
                                      kind="backfill")[0].subject == "subject 0"


def test_config_changes_are_recorded_once_with_what_changed(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "m.sqlite")
    first = {"exchange": "binance", "redis_url": "redis://:pw-123456@h/0", "max_in_flight": 50}
    assert log.record_config("helios stream", first) is not None
    assert log.record_config("helios stream", first) is None  # unchanged: no row
    changed = log.record_config("helios backfill", {**first, "max_in_flight": 20})
    assert changed is not None
    assert changed.detail["changed"] == ["max_in_flight"]
    assert changed.detail["config"]["redis_url"] == "redis://:***@h/0"
    assert [e.subject for e in log.entries(kind="config_change")] == [
        "helios stream", "helios backfill"]
    assert log.verify().ok
