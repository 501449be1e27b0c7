"""Is the stream service healthy? One alert when a problem starts and one when it ends.

The ``stream_health_sensor`` reads the health the stream service publishes in Redis every few
seconds (``storage.hot.health``) and hands it here with what it remembered from its previous tick
(the sensor's cursor). Three problems are watched:

* ``down``: no health is published (it expires 30 s after the service stops) although the service
  was seen running before; a platform that never ran a stream raises nothing;
* ``lagging``: ``lag_ms`` (exchange time to Redis, the worst shard's) above ``max_lag_ms``;
* ``shedding``: the service dropped more than ``max_shed`` ticks since the previous tick (the
  ``shed`` counter is cumulative; a restart resets it, which is not shedding).

Each problem is an episode: a ``warning`` alert when it starts (``critical`` for ``down``), an
``info`` alert when it is over, nothing while it lasts, however many ticks that takes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from helios_pipeline.quality.alerts import Alert, Severity

PROBLEMS = ("down", "lagging", "shedding")
_SEVERITY: dict[str, Severity] = {"down": "critical", "lagging": "warning", "shedding": "warning"}


@dataclass(frozen=True)
class StreamThresholds:
    """When the stream counts as lagging or shedding.

    Attributes:
        max_lag_ms: Lag above this is a problem.
        max_shed: More ticks shed than this between two sensor ticks is a problem.
    """

    max_lag_ms: int = 5_000
    max_shed: int = 0


@dataclass
class WatchState:
    """What the sensor remembers between ticks (its cursor, as JSON)."""

    seen_running: bool = False
    shed: int = 0
    open: dict[str, str] = field(default_factory=dict)  # problem -> ISO time it started

    def to_cursor(self) -> str:
        """The state as the sensor's cursor."""
        return json.dumps({"seen_running": self.seen_running, "shed": self.shed,
                           "open": self.open}, sort_keys=True)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> WatchState:
        """The state a cursor holds (a fresh state for none or an unreadable one)."""
        try:
            raw = json.loads(cursor) if cursor else {}
            return cls(bool(raw.get("seen_running")), int(raw.get("shed", 0)),
                       {str(k): str(v) for k, v in dict(raw.get("open", {})).items()})
        except (ValueError, TypeError, AttributeError):
            return cls()


def _number(health: Mapping[str, str], name: str) -> int:
    try:
        return int(float(health.get(name) or 0))
    except ValueError:
        return 0


def current_problems(health: Mapping[str, str], state: WatchState,
                     thresholds: StreamThresholds) -> dict[str, str]:
    """Problems present now, each with a one-line description."""
    if not health:
        return {"down": "no stream health published for over 30 s: `helios stream` stopped or "
                        "cannot reach Redis"} if state.seen_running else {}
    problems: dict[str, str] = {}
    lag = _number(health, "lag_ms")
    if lag > thresholds.max_lag_ms:
        problems["lagging"] = f"lag {lag} ms, above {thresholds.max_lag_ms} ms"
    shed = _number(health, "shed")
    new_shed = shed - state.shed if shed >= state.shed else shed
    if new_shed > thresholds.max_shed:
        problems["shedding"] = f"{new_shed} ticks shed since the last check, above " \
                               f"{thresholds.max_shed}"
    return problems


def watch(health: Mapping[str, str], state: WatchState, thresholds: StreamThresholds,
          exchange: str, now: datetime) -> tuple[list[Alert], WatchState]:
    """Alerts for problems that started or ended since the last tick, and the next state."""
    problems = current_problems(health, state, thresholds)
    alerts: list[Alert] = []
    opened = dict(state.open)
    for name, description in problems.items():
        if name not in opened:
            opened[name] = now.isoformat()
            alerts.append(Alert(_SEVERITY[name], f"{exchange} stream {name}", description,
                                None, f"stream.{name}", None, now))
    for name in [n for n in opened if n not in problems]:
        since = opened.pop(name)
        alerts.append(Alert("info", f"{exchange} stream recovered from {name}",
                            f"{name} since {since} is over", None, f"stream.{name}.recovered",
                            None, now))
    running = bool(health)
    shed = _number(health, "shed") if running else 0
    return alerts, WatchState(state.seen_running or running, shed, opened)
