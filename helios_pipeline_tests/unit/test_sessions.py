"""Trading-session records: folders per session, appends that survive a crash, exact values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from helios_pipeline.storage.sessions import SessionError, TradingSessions

START = datetime(2024, 12, 22, 14, 30, 22, tzinfo=UTC)


def test_a_session_records_snapshots_signals_and_trades(tmp_path: Path) -> None:
    sessions = TradingSessions(tmp_path)
    info = sessions.start(["BTC/USDT"], "grid", {"levels": 20}, now=START)
    assert info.session_id == "session_20241222_143022"
    trade = {"time": "2024-12-22T14:31:00Z", "side": "buy", "price": Decimal("97000.01"),
             "qty": Decimal("0.00105")}
    assert sessions.append(info.session_id, "trades", [trade]) == 1
    sessions.append(info.session_id, "trades", [{**trade, "side": "sell"}])
    sessions.append(info.session_id, "signals", [{"time": "t", "rsi": "41.5"}])
    trades = sessions.load(info.session_id, "trades")
    assert trades["side"].tolist() == ["buy", "sell"]
    assert trades["price"].tolist() == ["97000.01", "97000.01"]  # every digit kept
    assert sessions.load(info.session_id, "market_data_snapshot").empty
    ended = sessions.end(info.session_id, now=START.replace(hour=15))
    assert ended.ended_at == "2024-12-22T15:30:22+00:00"
    assert sessions.info(info.session_id).parameters == {"levels": 20}
    second = sessions.start(["ETH/USDT"], "grid", now=START)
    assert second.session_id == "session_20241222_143022_2"
    assert sessions.sessions() == ["session_20241222_143022", "session_20241222_143022_2"]
    folder = tmp_path / "trading_sessions" / info.session_id
    assert sorted(p.name for p in folder.iterdir()) == ["session.json", "signals.csv",
                                                        "trades.csv"]


def test_a_line_cut_by_a_crash_is_dropped_and_appends_stay_whole(tmp_path: Path) -> None:
    sessions = TradingSessions(tmp_path)
    sid = sessions.start(["BTC/USDT"], "grid", now=START).session_id
    sessions.append(sid, "trades", [{"side": "buy", "qty": "1"}])
    path = tmp_path / "trading_sessions" / sid / "trades.csv"
    with path.open("a") as stream:
        stream.write("sell,0.")  # the crash
    assert sessions.load(sid, "trades")["side"].tolist() == ["buy"]
    sessions.append(sid, "trades", [{"side": "sell", "qty": "2"}])
    assert sessions.load(sid, "trades")["qty"].tolist() == ["1", "2"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda s, sid: s.append("session_19990101_000000", "trades", [{"a": 1}]), "No trading"),
    (lambda s, sid: s.append("../../etc", "trades", [{"a": 1}]), "No trading"),
    (lambda s, sid: s.append(sid, "orders", [{"a": 1}]), "Unknown record kind"),
    (lambda s, sid: s.append(sid, "trades", [{"a": 1}, {"b": 2}]), "does not have the columns"),
])
def test_bad_appends_are_refused(tmp_path: Path, call: object, message: str) -> None:
    sessions = TradingSessions(tmp_path)
    sid = sessions.start(["BTC/USDT"], "grid", now=START).session_id
    with pytest.raises(SessionError, match=message):
        call(sessions, sid)  # type: ignore[operator]
    sessions.append(sid, "signals", [{"a": 1}])
    with pytest.raises(SessionError, match="has columns"):
        sessions.append(sid, "signals", [{"b": 1}])
