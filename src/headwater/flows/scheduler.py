"""The scheduler: runs declared pipelines when their cron fires and when new data lands.

The decisions live in plain methods that take the time as an argument
(`PipelineScheduler.fire_due`, `PipelineScheduler.watch`), so a test drives days of
fires with a fake clock and never waits; `PipelineScheduler.serve` only hands them
to APScheduler (a cron trigger per pipeline in its time zone, an interval trigger
for polling sources), which calls them with the real time.

- **Misfires coalesce.** A fire is due when a cron time lies in (the last claimed
  fire, now]; only the latest such time runs, so a scheduler that was down for three
  days runs a pipeline once when it comes back, not three times.
- **New data.** A folder's or glob's files are fingerprinted by name, size and
  modification time; a URL by the sha256 of what it serves (fetched through the SSRF
  guard at every poll, so keep ``poll_s`` sensible for large files).
- **Each fire once.** A fire is claimed in the warehouse (``cron:<time>`` or
  ``data:<fingerprint of the source>``) in the same transaction that takes the
  pipeline's lease, so two schedulers on one warehouse never both run it.
- **Dead workers.** On start, a run whose lease expired or whose process is gone
  is marked ``abandoned`` and its fire freed: the next tick runs that fire once.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from headwater.errors import ConfigError, HeadwaterError, WriteConflict
from headwater.flows.pipeline_config import PipelineConfig, load_pipelines
from headwater.flows.pipelines import holder_alive, new_holder, run_pipeline
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.fetch import download, is_url
from headwater.storage.lake import sha256_file
from headwater.storage.warehouse import pipelines as store
from headwater.storage.warehouse.pipelines import PipelineRunRow

__all__ = ["PipelineScheduler", "run_scheduler", "source_fingerprint"]

log = logging.getLogger("headwater.scheduler")


def source_fingerprint(ws: Workspace, config: PipelineConfig) -> str | None:
    """What the source holds now, hashed: a URL's bytes (fetched through the SSRF guard),
    or the names, sizes and modification times of its files; None when there is nothing."""
    if is_url(config.source):
        path = download(
            config.source,
            ws.lake.staging,
            max_bytes=ws.settings.max_upload_bytes,
            allow_private=ws.settings.fetch_allow_private,
        )
        try:
            return sha256_file(path)[:32]
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
    files = config.watched_files()
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


class PipelineScheduler:
    """Fires a workspace's declared pipelines; see the module docstring."""

    def __init__(
        self,
        ws: Workspace,
        pipelines: Mapping[str, PipelineConfig],
        *,
        holder: str | None = None,
        lease_s: float = 300.0,
    ) -> None:
        self.ws = ws
        self.pipelines = dict(pipelines)
        self.holder = holder or new_holder()
        self.lease_s = lease_s
        self._since: dict[str, datetime] = {}

    def start(self, now: datetime) -> list[str]:
        """Mark dead workers' runs abandoned and note when each pipeline was first seen.

        ``now`` (a fake clock in tests) places the schedule; leases, which real workers
        renew, are judged by the real time.
        """
        real = datetime.now(UTC)
        abandoned = store.abandon_dead(self.ws.warehouse, now=real, alive=holder_alive)
        for name in abandoned:
            log.warning("pipeline run %s was abandoned by a worker that died", name)
        for name in self.pipelines:
            self._since[name] = store.first_seen(self.ws.warehouse, name, now)
        return abandoned

    def fire_due(self, now: datetime) -> list[PipelineRunRow]:
        """Run each pipeline whose cron fired since its last claimed fire (once, coalesced)."""
        done = []
        for name, config in self.pipelines.items():
            if config.schedule is None:
                continue
            since = self._since.get(name) or store.first_seen(self.ws.warehouse, name, now)
            last = store.last_fire_at(self.ws.warehouse, name)
            fire = config.latest_fire(max(since, last) if last else since, now)
            if fire is None:
                continue
            key = f"cron:{fire.astimezone(UTC).isoformat()}"
            ran = self._run(config, "schedule", key, fire)
            if ran is not None:
                done.append(ran)
        return done

    def watch(self, now: datetime) -> list[PipelineRunRow]:
        """Run each ``on_new_data`` pipeline whose source changed since its last data fire."""
        done = []
        for config in self.pipelines.values():
            if not config.on_new_data:
                continue
            try:
                fingerprint = source_fingerprint(self.ws, config)
            except HeadwaterError as error:  # a server away: the next poll tries again
                log.warning(
                    "pipeline %s: could not look at %s: %s", config.name, config.source, error
                )
                continue
            if fingerprint is None:
                continue
            key = f"data:{fingerprint}"
            if store.last_data_fire(self.ws.warehouse, config.name) == key:
                continue
            ran = self._run(config, "new-data", key, None)
            if ran is not None:
                done.append(ran)
        return done

    def _run(
        self, config: PipelineConfig, trigger: str, key: str, fire: datetime | None
    ) -> PipelineRunRow | None:
        """Run one fire; None when another scheduler claimed it or is running the pipeline."""
        try:
            return run_pipeline(
                self.ws,
                config,
                trigger=trigger,
                fire_key=key,
                fire_at=fire,
                holder=self.holder,
                lease_s=self.lease_s,
            )
        except WriteConflict as busy:  # left unclaimed: the next tick tries again
            log.info("%s", busy)
            return None

    def tick(self, now: datetime) -> list[PipelineRunRow]:
        return self.fire_due(now) + self.watch(now)

    def serve(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set: APScheduler calls `fire_due` and `watch` with the time."""
        self.start(datetime.now(UTC))
        self._safely(self.tick)  # a fire missed while no scheduler ran: once, now
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(1)},  # one run at a time per scheduler
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        for name, config in self.pipelines.items():
            trigger = config.trigger()
            if trigger is not None:
                scheduler.add_job(self._safely, trigger, args=[self.fire_due], id=f"cron-{name}")
        polls = [c.poll_s for c in self.pipelines.values() if c.on_new_data]
        if polls:
            every = IntervalTrigger(seconds=min(polls), timezone=UTC)
            scheduler.add_job(self._safely, every, args=[self.watch], id="watch")
        scheduler.start()
        try:
            stop.wait()
        finally:
            scheduler.shutdown(wait=True)

    def _safely(self, work: Callable[[datetime], object]) -> None:
        """Call ``work(now)``; a failure is logged, and the scheduler keeps going."""
        try:
            work(datetime.now(UTC))
        except HeadwaterError:
            log.exception("scheduler: a pipeline could not be run")


def run_scheduler(settings: Settings, stop: threading.Event, *, lease_s: float = 300.0) -> None:
    """The declared pipelines, scheduled on a workspace of their own until ``stop`` is set.

    What ``headwater schedule`` runs, and ``headwater serve --schedule`` in a thread.
    """
    pipelines = load_pipelines()
    if not pipelines:
        raise ConfigError("no pipelines declared; add [pipelines.NAME] to headwater.toml")
    with Workspace(settings) as ws:
        PipelineScheduler(ws, pipelines, lease_s=lease_s).serve(stop)
