"""What the CLI shows: tables for people on stdout, JSON for scripts, notes and progress on stderr.

Colour only on a terminal (Rich decides; NO_COLOR is honoured). Text from the registry is never
read as Rich markup.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from registry.cli.errors import CliError

MANY_FILES = 20  # above this, a finished file's bar is hidden to keep the screen short


class Output:
    def __init__(
        self, as_json: bool, *, stdout: Console | None = None, stderr: Console | None = None
    ) -> None:
        self.as_json = as_json
        self.out = stdout or Console(highlight=False)
        self.err = stderr or Console(stderr=True, highlight=False, soft_wrap=True)  # notes are not wrapped

    @property
    def interactive(self) -> bool:
        """Whether progress bars make sense: stderr is a terminal."""
        return self.err.is_terminal

    def json(self, document: Any) -> None:
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
        sys.stdout.flush()

    def note(self, text: str, style: str = "") -> None:
        self.err.print(Text(text, style=style))

    def line(self, text: str, style: str = "") -> None:
        self.out.print(Text(text, style=style), soft_wrap=True)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
        table = Table(*columns, title=title, header_style="bold", box=None, pad_edge=False)
        for row in rows:
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        self.out.print(table)

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, value in pairs:
            table.add_row(Text(key), Text("" if value is None else str(value)))
        self.out.print(table)

    def error(self, problem: CliError) -> None:
        if self.as_json:
            self.json(problem.as_json())
        self.err.print(Text("error: ", style="bold red") + Text(problem.message))
        for entry in problem.errors:
            self.err.print(
                Text(f"  {entry.get('field', '?')}: ", style="bold") + Text(str(entry.get("rule", "")))
            )
        if problem.hint:
            self.err.print(Text("next: ", style="bold") + Text(problem.hint))


def human_size(nbytes: int | float | None) -> str:
    if nbytes is None:
        return ""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # not reached


def transfer_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class UploadBars:
    """One bar per file being uploaded plus a total (the UploadProgress of registry.cli.upload)."""

    def __init__(self, output: Output, total_bytes: int, file_count: int) -> None:
        self.enabled = output.interactive and not output.as_json
        self.progress = transfer_progress(output.err)
        self.many = file_count > MANY_FILES
        self.total = self.progress.add_task(f"upload ({file_count} files)", total=total_bytes)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> UploadBars:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def file_started(self, target: str, size: int) -> None:
        self.tasks[target] = self.progress.add_task(target, total=size)

    def advanced(self, target: str, nbytes: int) -> None:
        self.progress.advance(self.tasks[target], nbytes)
        self.progress.advance(self.total, nbytes)

    def file_done(self, target: str, outcome: str) -> None:
        task = self.tasks[target]
        self.progress.update(task, description=f"{target} ({outcome})", visible=not self.many)


class CopyBars:
    """The registry's copy of each file, from the status route (unknown fields are ignored)."""

    def __init__(self, output: Output) -> None:
        self.enabled = output.interactive and not output.as_json
        self.progress = transfer_progress(output.err)
        self.total = self.progress.add_task("copy", total=None)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> CopyBars:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def show(self, status: dict[str, Any]) -> None:
        files = [f for f in status.get("files") or [] if isinstance(f, dict)]
        copied = total = 0
        for entry in files:
            name = str(entry.get("name", "?"))
            size = entry.get("size") or None
            done = int(entry.get("bytes_copied") or 0)
            label = name + (f" [{entry['phase']}]" if entry.get("phase") else "")
            if name not in self.tasks:
                self.tasks[name] = self.progress.add_task(label, total=size)
            self.progress.update(self.tasks[name], description=label, total=size, completed=done)
            copied += done
            total += int(size or 0)
        self.progress.update(
            self.total,
            description=f"copy: {status.get('state', '?')}",
            total=total or None,
            completed=copied,
        )
