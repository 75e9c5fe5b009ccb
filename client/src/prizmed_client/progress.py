"""The upload progress bar (rich): bytes with speed and ETA, instances acknowledged, indexing."""

from __future__ import annotations

from types import TracebackType

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


class BarProgress:
    """A ``report.Progress`` drawn on ``console`` (stderr); a context manager around the run."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TextColumn("{task.fields[detail]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._console = console
        self._upload: TaskID | None = None
        self._instances = 0
        self._total_instances = 0

    def __enter__(self) -> BarProgress:
        self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def start(self, *, total_bytes: int, total_instances: int) -> None:
        """Sending begins."""
        self._total_instances = total_instances
        self._upload = self._bar.add_task("upload", total=total_bytes, detail=self._detail())

    def sent(self, nbytes: int) -> None:
        """More bytes went out."""
        if self._upload is not None:
            self._bar.advance(self._upload, nbytes)

    def accepted(self, instances: int) -> None:
        """More instances acknowledged by a 202."""
        self._instances += instances
        if self._upload is not None:
            self._bar.update(self._upload, detail=self._detail())

    def indexing(self, *, done: int, total: int) -> None:
        """Indexing progress, in uploads: shown on the (full) upload bar's line."""
        if self._upload is not None:
            self._bar.update(self._upload, detail=f"{self._detail()}, {done}/{total} uploads indexed")

    def note(self, text: str) -> None:
        """A line above the bar."""
        self._console.print(text, markup=False, highlight=False)

    def _detail(self) -> str:
        return f"{self._instances}/{self._total_instances} instances"
