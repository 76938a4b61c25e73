"""Exit codes and the errors a command ends with; each says what to do next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK = 0
FAILED = 1  # refused by the registry or by the local checks, or a registration that failed
USAGE = 2  # wrong flags or arguments, or nothing says where the registry is
NOT_FOUND = 3  # no such model (or not one the caller may see)
INTERRUPTED = 130  # Ctrl-C: nothing was cancelled


@dataclass
class CliError(Exception):
    """A command's end with a message, the next step, and its exit code."""

    message: str
    hint: str = ""
    code: int = FAILED
    status: int | None = None  # the HTTP status, when the registry answered
    errors: list[dict[str, Any]] = field(default_factory=list)  # [{field, rule}]

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def as_json(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "status": self.status,
                "errors": self.errors,
                "hint": self.hint,
                "exit_code": self.code,
            }
        }


class UsageProblem(CliError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint, USAGE)
