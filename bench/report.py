"""Figures: a value, the baseline it is compared with, the ratio and the target."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}
REPORT_ONLY = "report only"  # a figure with no target: measured and shown, never judged


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    value: float
    baseline: float
    baseline_label: str
    target: str  # e.g. ">= 0.8": a bound on value / baseline; or REPORT_ONLY
    details: dict[str, Any] = field(default_factory=dict)
    digits: int = 1  # shown after the decimal point in the human line

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    @property
    def met(self) -> bool | None:
        if self.target == REPORT_ONLY:
            return None
        comparison, bound = self.target.split()
        return _COMPARISONS[comparison](self.ratio, float(bound))

    def line(self) -> str:
        if self.met is None:
            target, verdict = "no target", "(report only)"
        else:
            target = "target " + self.target.replace(">=", "≥").replace("<=", "≤")
            verdict = "ok" if self.met else "BELOW TARGET" if self.target.startswith(">=") else "ABOVE TARGET"
        return (
            f"{self.label}: {self.value:.{self.digits}f} {self.unit} ({self.baseline_label} "
            f"{self.baseline:.{self.digits}f} → {self.ratio:.2f}×, {target}) {verdict}"  # noqa: RUF001
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 3),
            "baseline": round(self.baseline, 3),
            "ratio": round(self.ratio, 3),
            "target": self.target,
            "met": self.met,
            "unit": self.unit,
            "baseline_label": self.baseline_label,
            **self.details,
        }


def summary(figures: list[Figure], extra: dict[str, Any]) -> str:
    """One JSON object holding every figure (the last line of the benchmark's output)."""
    document: dict[str, Any] = {figure.key: figure.as_json() for figure in figures}
    document.update(extra)
    return json.dumps(document, separators=(",", ":"))
