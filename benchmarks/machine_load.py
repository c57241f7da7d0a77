"""What else the machine was doing while something was timed: the load average and the CPU
time that other processes used, from /proc/stat (Linux; elsewhere only the load average).

    with MachineLoad() as load:
        ...timed work...
    load.summary()   # {"loadavg": [...], "others_cpus": 0.07, "seconds": 12.3}

`others_cpus` is the CPU time every process but this one used during the block, divided by
the block's wall time: 0.0 means the other processes left the CPUs alone, 1.0 means they kept
one CPU busy on average. This process's own time (all its threads, and waited-for children)
comes from `os.times`, so it is not counted as someone else's.
"""
from __future__ import annotations

import os
import time
from typing import Optional


def _busy_seconds() -> Optional[float]:
    """CPU seconds spent busy by all CPUs since boot (None where /proc/stat is missing)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class MachineLoad:
    """A context that records the load average at its start and the other processes' CPU use
    during it (see the module docstring)."""

    def __init__(self):
        self.loadavg = None
        self.others_cpus = None
        self.seconds = None

    def __enter__(self) -> "MachineLoad":
        self.loadavg = [round(v, 2) for v in os.getloadavg()]
        self._t0, self._busy0, self._own0 = time.perf_counter(), _busy_seconds(), _own_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        busy1 = _busy_seconds()
        if busy1 is not None and self._busy0 is not None and self.seconds > 0:
            others = (busy1 - self._busy0) - (_own_seconds() - self._own0)
            self.others_cpus = round(max(0.0, others) / self.seconds, 3)

    def summary(self) -> dict:
        return {"loadavg": self.loadavg, "others_cpus": self.others_cpus, "seconds": round(self.seconds or 0.0, 2)}

    def __str__(self) -> str:
        others = "-" if self.others_cpus is None else f"{self.others_cpus:.2f}"
        return f"load average {self.loadavg[0]:.2f} at the start, other processes {others} CPUs during it"
