"""A reader that polls pipeline_state.json like a UI would, and checks what it saw."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path


def _ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class StateSampler(threading.Thread):
    def __init__(self, path: Path, interval: float = 0.1):
        super().__init__(daemon=True)
        self.path = path
        self.interval = interval
        self.samples: list[dict] = []
        self.invalid: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                text = self.path.read_text()
            except FileNotFoundError:
                text = None
            if text is not None:
                try:
                    self.samples.append(json.loads(text))
                except ValueError:
                    self.invalid.append(text)
            time.sleep(self.interval)

    def stop(self) -> StateSampler:
        self._halt.set()
        self.join()
        return self

    def check(self, max_gap_s: float = 10.0) -> None:
        """Valid JSON every time, pct never down within a run, no gap over max_gap_s while running."""
        assert not self.invalid, f"reader saw {len(self.invalid)} invalid documents, e.g. {self.invalid[0][:200]!r}"
        assert self.samples, "the state file never appeared"
        last_pct: dict[str, float] = {}
        for s in self.samples:
            run = s.get("run_id")
            if s.get("pct") is not None:
                assert s["pct"] >= last_pct.get(run, 0.0) - 1e-9, f"pct went down: {last_pct[run]} -> {s['pct']}"
                last_pct[run] = s["pct"]
        for a, b in zip(self.samples, self.samples[1:]):
            if a.get("status") == "running":
                gap = _ts(b["updated_at"]) - _ts(a["updated_at"])
                assert gap <= max_gap_s, f"no update for {gap:.1f} s while running ({a['message']!r})"
