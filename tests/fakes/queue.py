"""A JobQueue that records what was sent, through the job's own JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from registry.domain.errors import StorageUnavailable
from registry.domain.jobs import CopyJob, Job, parse_job


@dataclass
class SentJob:
    job: Job
    delay_seconds: float


class FakeJobQueue:
    """Records what was sent (through the job's own JSON form, as the real queue carries it)."""

    def __init__(self) -> None:
        self.sent: list[SentJob] = []
        self.failing = False

    def send(self, job: Job, delay_seconds: float = 0) -> None:
        if self.failing:
            raise StorageUnavailable("fake queue: unavailable")
        self.sent.append(SentJob(parse_job(job.to_json()), delay_seconds))

    def send_batch(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.send(job)

    @property
    def jobs(self) -> list[CopyJob]:
        return [s.job for s in self.sent if isinstance(s.job, CopyJob)]

    def take(self) -> list[CopyJob]:
        """Every copy job sent so far, emptying the queue."""
        jobs, self.sent = self.jobs, []
        return jobs

    def take_due(self) -> list[CopyJob]:
        """The copy jobs sent to be delivered now; those sent with a delay stay queued."""
        due = [s.job for s in self.sent if isinstance(s.job, CopyJob) and not s.delay_seconds]
        self.sent = [s for s in self.sent if s.delay_seconds]
        return due
