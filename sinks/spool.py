"""The outage machinery of the journalled sinks (redis, mqtt, webhook), written once.

A sink sends a batch itself while nothing waits; once something failed, its batches go
to the on-disk journal (``sinks/journal.py``) behind what waits, and the replay thread
of its ``Spool`` delivers the journal, oldest first, through the sink's ``deliver``.
Entries leave the journal only after the destination took them: delivery is
at-least-once, and ``event_id`` lets consumers drop the duplicates a crash can cause.

When the journal itself cannot take a batch (full disk, I/O error), the batch is kept
in memory, behind the journal and in order, and the replay thread retries the spill
(or, with nothing older waiting, sends it straight to the destination). That backlog is
bounded: beyond ``_BACKLOG_BYTES`` ``publish`` waits, so the pipeline slows down rather
than dropping events. The replay thread never dies: a failure is logged, counted in
``restarts``, reported by ``problem`` until a later pass succeeds, and the loop starts
again after a backoff. Those are the health a sink shows (``SpooledSink``, the
``ReplayingSink`` of stream/metrics.py).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fiqa_stream.errors import SinkError
from fiqa_stream.redact import redact_text
from fiqa_stream.sinks.journal import Journal, JournalEntry

log = logging.getLogger(__name__)

# Events that neither the journal nor the destination took yet; beyond this, publish waits.
_BACKLOG_BYTES = 64 << 20
_FIRST_RESTART_PAUSE = 0.2
_MAX_RESTART_PAUSE = 5.0

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Sent:
    """What one ``deliver`` call came to: how many entries from the front the destination
    took (delivered, or refused for good), why not the rest, and how long it asked to wait."""

    taken: int
    why: str = ""
    retry_after: float | None = None


Deliver = Callable[[list[JournalEntry]], Sent]
"""Sends entries, in order; an exception that is not ``unreachable`` restarts the replay."""
Direct = Callable[[list[JournalEntry]], list[JournalEntry]]
"""Sends entries from ``publish``; returns those not taken (after logging why)."""


@dataclass(frozen=True, slots=True)
class Pacing:
    """How the replay thread waits.

    ``idle``: between passes while entries wait and the destination answers (a wake-up
    comes sooner). ``first``/``most``: the backoff after a failed pass, doubled up to
    ``most`` (a ``Retry-After`` longer than it counts). ``patient``: the backoff is waited
    out whatever arrives meanwhile, and the backlog is left alone, so a destination that
    is down is not hammered; otherwise a wake-up ends it and the backlog is spilled.
    """

    idle: float = 0.1
    first: float = 0.2
    most: float = 5.0
    patient: bool = False


class Spool:
    """A sink's journal, in-memory backlog and replay thread, and their health.

    ``sink`` and ``where`` (a redacted address) name the sink in log lines; ``destination``
    names what it sends to ("Redis", "the broker"). ``deliver`` sends a replayed batch of
    up to ``batch`` entries (one by one when ``singly``); an ``unreachable`` exception
    from it counts as "not taken", a ``refused`` one from it while the backlog is sent
    straight from memory restarts the replay with the reason.
    """

    def __init__(
        self, sink: str, where: str, destination: str, journal: Journal, deliver: Deliver, *, batch: int,
        singly: bool = False, unreachable: tuple[type[Exception], ...] = (),
        refused: tuple[type[Exception], ...] = (), pacing: Pacing | None = None,
    ) -> None:
        self.journal = journal
        self.restarts = 0
        self.problem: str | None = None
        self.reachable = True  # as the last send found it
        self._sink, self._where, self._destination = sink, where, destination
        self._deliver, self._batch, self._singly = deliver, batch, singly
        self._unreachable, self._refused, self._pacing = unreachable, refused, pacing or Pacing()
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Guards the backlog and the choice between direct send, journal and backlog.
        self._order = threading.Condition()
        self._backlog: deque[JournalEntry] = deque()
        self._backlog_bytes = 0
        self._restart_pause = _FIRST_RESTART_PAUSE
        self._delivered_through: int | None = None
        self._replayer = threading.Thread(target=self._replay_loop, name=f"{sink}-replay", daemon=True)

    @property
    def unspilled(self) -> int:
        """Events held in memory because the journal could not store them."""
        return len(self._backlog)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def pause(self, seconds: float) -> bool:
        """Sleeps ``seconds`` unless the spool stops meanwhile; whether it stops."""
        return self._stop.wait(seconds)

    def wake(self) -> None:
        """Makes the replay thread look now (a reconnect, a destination that is ready)."""
        self._wake.set()

    def start(self) -> None:
        """Starts the replay thread, which first delivers what an earlier run left."""
        self._replayer.start()
        if len(self.journal):
            log.warning("%s sink %s: %d events from an earlier run wait in journal %s; replaying them first",
                        self._sink, self._where, len(self.journal), self.journal.path)
            self._wake.set()

    def publish(self, entries: list[JournalEntry], direct: Direct) -> None:
        """Sends entries with ``direct`` while nothing waits, else queues them behind what
        does; waits while the backlog is over its bound."""
        with self._order:
            if self._backlog:
                self._keep(entries)
            elif len(self.journal):
                self._append_or_keep(entries)
            else:
                rest = direct(entries)
                if rest:
                    self.reachable = False
                    self._append_or_keep(rest)
            while self._backlog_bytes > _BACKLOG_BYTES and not self._stop.is_set():
                self._order.wait(0.5)

    def publish_within(self, entries: list[JournalEntry | None], direct: Direct, limit: str, most: int) -> None:
        """``publish`` for the entries that are not None (the sink's ``_entry`` gives None for an
        event over its size limit, the setting ``limit`` of ``most`` bytes), then ``SinkError``
        naming how many were not sent."""
        taken = [entry for entry in entries if entry is not None]
        if taken:
            self.publish(taken, direct)
        if len(taken) < len(entries):
            raise SinkError(f"{self._sink} sink {self._where}: {len(entries) - len(taken)} event(s) larger than "
                            f"{limit} ({most}) were not sent")

    def close(self, drain_seconds: float, drain_while: Callable[[], bool] | None = None,
              join_seconds: float = 5.0) -> None:
        """Gives the replay thread a last chance to deliver (while ``drain_while`` holds),
        then stops; what is left stays in the journal for the next start."""
        waited = 0.0
        while (len(self.journal) or self._backlog) and (drain_while is None or drain_while()) and (
                waited < drain_seconds):
            self._wake.set()
            self._stop.wait(0.1)
            waited += 0.1
        self._stop.set()
        self._wake.set()
        with self._order:
            self._order.notify_all()
        self._replayer.join(join_seconds)
        with self._order:
            if self._backlog:
                try:
                    self.journal.append(list(self._backlog))
                    self._backlog.clear()
                except SinkError as error:
                    log.error("%s sink %s: %d event(s) are lost: neither %s nor the journal took them (%s)",
                              self._sink, self._where, len(self._backlog), self._destination, error)
        try:
            stored = self.journal.recount()
        except SinkError as error:
            log.error("%s sink %s: %s", self._sink, self._where, error)
            stored = 0
        if stored:
            log.warning("%s sink %s: %d events stay in journal %s; they are sent on the next start",
                        self._sink, self._where, stored, self.journal.path)
        self.journal.close()

    def _append_or_keep(self, entries: list[JournalEntry]) -> None:
        """Into the journal; when it fails, into the in-memory backlog (caller holds ``_order``)."""
        try:
            self.journal.append(entries)
        except SinkError as error:
            self._keep(entries)
            log.error("%s sink %s: %s; %d event(s) kept in memory (%d waiting), retrying the spill",
                      self._sink, self._where, error, len(entries), len(self._backlog))
        self._wake.set()

    def _keep(self, entries: list[JournalEntry]) -> None:
        self._backlog.extend(entries)
        self._backlog_bytes += sum(e.size for e in entries)
        self._wake.set()

    def _replay_loop(self) -> None:
        """Runs ``_replay`` until stopped; a failure is logged, counted, and replay restarts."""
        while not self._stop.is_set():
            try:
                self._replay()
            except Exception as error:  # noqa: BLE001 - a dead replay thread strands the journal for good
                self.restarts += 1
                self.problem = f"{type(error).__name__}: {redact_text(str(error))}"
                log.error("%s sink %s: replay failed (%s); restart %d in %.1f s", self._sink, self._where,
                          self.problem, self.restarts, self._restart_pause)
                self._stop.wait(self._restart_pause)
                self._restart_pause = min(_MAX_RESTART_PAUSE, self._restart_pause * 2)

    def _replay(self) -> None:
        """One pass per wake-up: the journal oldest-first, then what waits in memory."""
        pacing = self._pacing
        backoff: float | None = None  # None: the last pass reached the destination
        while not self._stop.is_set():
            if backoff is None or not pacing.patient:
                waiting = len(self.journal) or self._backlog
                if not waiting:
                    self._healthy()  # nothing left that could fail
                self._wake.wait((backoff or pacing.idle) if waiting else None)
            else:
                self._stop.wait(backoff)
            self._wake.clear()
            if self._stop.is_set():
                return
            failed = self._deliver_journal()
            self.reachable = failed is None
            if failed is None:
                backoff = None
            else:
                backoff = pacing.first if backoff is None else min(pacing.most, backoff * 2)
                if failed.retry_after is not None:
                    backoff = min(pacing.most, max(backoff, failed.retry_after))
                log.debug("%s sink %s: replay paused: %s; next attempt in %.1f s", self._sink, self._where,
                          failed.why, backoff)
            if failed is None or not pacing.patient:
                self._spill_backlog(send=failed is None)
            if self._delivered_through is not None:
                # Delivered, but the journal could not forget them (a full disk): fail until it can.
                self.journal.remove_through(self._delivered_through)
                self._delivered_through = None
            self._healthy()

    def _send(self, entries: list[JournalEntry]) -> Sent:
        try:
            return self._deliver(entries)
        except self._unreachable as error:
            return Sent(0, redact_text(str(error)) or type(error).__name__)

    def _parts(self, items: list[_T]) -> list[list[_T]]:
        """What one ``deliver`` call gets: all of them, or one by one."""
        return [[item] for item in items] if self._singly else [items]

    def _deliver_journal(self) -> Sent | None:
        """Sends the journal oldest-first; the failure that stopped it, or None when the
        destination took all of it (or the spool stops).

        A batch the journal cannot delete is remembered as delivered (``_delivered_through``)
        and not sent again by this process; deleting it is retried with the next batch and
        at the end of the pass.
        """
        while not self._stop.is_set():
            batch = self.journal.oldest(self._batch, after=self._delivered_through or 0)
            if not batch:
                return None
            for part in self._parts(batch):
                sent = self._send([entry for _, entry in part])
                if sent.taken:
                    self._delivered_through = part[sent.taken - 1][0]
                    try:
                        self.journal.remove_through(self._delivered_through)
                        self._delivered_through = None
                    except SinkError as error:
                        log.debug("%s sink %s: %s", self._sink, self._where, error)
                if sent.taken < len(part):
                    return sent
                if self._stop.is_set():
                    return None
            if self._delivered_through is None and not len(self.journal):
                log.info("%s sink %s: journal delivered; back to sending directly", self._sink, self._where)
        return None

    def _journal_waiting(self) -> bool:
        """Whether the journal holds entries not yet delivered by this process."""
        return bool(self.journal.oldest(1, after=self._delivered_through or 0))

    def _spill_backlog(self, send: bool) -> None:
        """Moves the in-memory backlog into the journal; failing that, with nothing older
        waiting in the journal and ``send``, straight to the destination, in order.

        Raises:
            SinkError: neither took all of it (the rest stays in memory, in order).
        """
        if not self._backlog:
            return
        with self._order:
            try:
                if self.journal.when_full == "block" and not self.journal.has_room(self._backlog_bytes):
                    return  # replay makes room first; appending here would wait on this very thread
                try:
                    self.journal.append(list(self._backlog))
                except SinkError as error:
                    if not send or self._journal_waiting():
                        raise
                    self._send_backlog(error)  # nothing older waits, so sending directly keeps the order
                else:
                    log.info("%s sink %s: %d event(s) from memory spilled to journal %s",
                             self._sink, self._where, len(self._backlog), self.journal.path)
                    self._backlog.clear()
                    self._backlog_bytes = 0
            finally:
                self._order.notify_all()

    def _send_backlog(self, spill_error: SinkError) -> None:
        """Sends the backlog from memory, dropping from it what was taken (caller holds ``_order``)."""
        sent_count = 0
        for part in self._parts(list(self._backlog)):
            if self._stop.is_set():
                break
            try:
                sent = self._send(part)
            except self._refused as refused:
                raise SinkError(f"{spill_error}; and {self._destination} refused them: "
                                f"{redact_text(str(refused))}") from None
            for entry in part[:sent.taken]:
                self._backlog.popleft()
                self._backlog_bytes -= entry.size
            sent_count += sent.taken
            if sent.taken < len(part):
                raise SinkError(f"{spill_error}; and {self._destination} did not take them: {sent.why}")
        log.info("%s sink %s: %d event(s) from memory sent to %s", self._sink, self._where, sent_count,
                 self._destination)

    def _healthy(self) -> None:
        if self.problem is not None:
            log.info("%s sink %s: replay works again after %d restart(s)", self._sink, self._where, self.restarts)
        self.problem = None
        self._restart_pause = _FIRST_RESTART_PAUSE


class SpooledSink:
    """The health of a sink with a ``Spool`` (``ReplayingSink`` in stream/metrics.py)."""

    _spool: Spool

    @property
    def journal_depth(self) -> int:
        return len(self._spool.journal)

    @property
    def unspilled(self) -> int:
        """Events held in memory because the journal could not store them."""
        return self._spool.unspilled

    @property
    def replay_restarts(self) -> int:
        return self._spool.restarts

    @property
    def replay_problem(self) -> str | None:
        return self._spool.problem

    @property
    def replay_healthy(self) -> bool:
        return self.replay_problem is None
