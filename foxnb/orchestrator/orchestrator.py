"""The orchestrator: every compile, load, benchmark or batch item runs as a recorded task.

One lock guards all task state; records, hooks, log lines and done-callbacks are produced
under it but delivered after it is released (:class:`_Out`), so a hook never runs under
the orchestrator's lock (nor under a breaker's: breakers announce after releasing theirs).
"""

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from foxnb.orchestrator.breaker import (
    BreakerPolicy,
    BreakerSnapshot,
    CircuitBreaker,
    CircuitOpenError,
    counts_as_failure,
)
from foxnb.orchestrator.context import current_correlation_id, enter_task
from foxnb.orchestrator.handle import LiveTask, TaskHandle
from foxnb.orchestrator.history import TaskHistory
from foxnb.orchestrator.records import (
    Attempt,
    FallbackStep,
    TaskRecord,
    TaskState,
    describe_error,
)
from foxnb.orchestrator.retry import NO_RETRY, RetryPolicy

if TYPE_CHECKING:
    import random

    from foxnb.hooks import BreakerEvent, HookRegistry
    from foxnb.orchestrator.executors import Executor, FutureLike, WorkerPool
    from foxnb.orchestrator.scheduler import Scheduler

__all__ = ["Orchestrator", "OrchestratorSnapshot"]

T = TypeVar("T")
S = TaskState
_log = logging.getLogger("foxnb.orchestrator")
_INLINE, _THREADS, _EXTERNAL = "inline", "threads", "external"
_RETRY, _DEADLINE = "retry", "deadline"
_RECENT = 20  # task records in a snapshot


class OrchestratorSnapshot(NamedTuple):
    """The orchestrator at one moment, as immutable values (readable from any thread).

    ``counts`` are tasks by state since the orchestrator was created (dropped history
    included); ``queue_depth`` is queued + waiting; ``recent`` the newest task records.
    """

    counts: Mapping[str, int]
    queue_depth: int
    running: int
    workers: int
    accepting: bool
    breakers: tuple[BreakerSnapshot, ...]
    recent: tuple[TaskRecord, ...]
    retries_total: int
    history_size: int


# (engine, breaker name, function, args, kwargs) of one synchronous step
_Step = tuple[str, str | None, Callable[..., Any], tuple[Any, ...], dict[str, Any]]
# (ok, value, error, outcome) of one attempt
_Result = tuple[bool, Any, BaseException | None, str]


class _Out:
    """What to deliver once the lock is released."""

    __slots__ = ("callbacks", "dispatch", "futures", "records", "settled")

    def __init__(self) -> None:
        self.settled: list[LiveTask] = []  # tasks that ended: wake their waiters last
        self.records: list[TaskRecord] = []
        self.callbacks: list[tuple[TaskHandle, Callable[[TaskHandle], None]]] = []
        self.dispatch: list[LiveTask] = []
        self.futures: list[FutureLike] = []


def _invoke(handle: TaskHandle, fn: Callable[..., T], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> T:
    enter_task(handle)  # in a copied context: gone when the attempt returns
    return fn(*args, **kwargs)


class Orchestrator:
    """Run work as tasks: retries, timeouts, circuit breakers, records, hooks.

    Parameters
    ----------
    executor : {"threads", "inline", "dask"} or Executor
        Where :meth:`submit` runs attempts. ``"threads"``: named worker threads started on
        demand. ``"inline"``: in the submitting (or waiting) thread, deterministic.
        ``"dask"``: a ``dask.distributed`` client (``client=``). An object with
        ``submit``/``shutdown`` (e.g. a ``ProcessPoolExecutor``): attempts run there
        without ``current_task()``; the orchestrator shuts it down with itself.
        :meth:`run` and :meth:`fallback` always run in the calling thread.
    max_workers : int
        Worker threads for ``"threads"``.
    clock : callable
        Monotonic clock for task timings, breakers and (by default) due times.
    rng : random.Random, optional
        Source of the retry jitter (seed it in tests).
    scheduler : Scheduler, optional
        Due-time queue with its clock and the ``sleep`` the synchronous path waits with;
        inject one with a fake clock to test retries without sleeping.
    history : int
        Task records kept for :meth:`tasks`; unfinished tasks are never dropped.
    hooks : HookRegistry, optional
        Where ``"task"`` and ``"breaker"`` events go (default: ``foxnb.hooks.hooks``).
    client : dask.distributed.Client, optional
        For ``executor="dask"``.
    breaker_policy : BreakerPolicy, optional
        Policy of the per-engine breakers :meth:`breaker` creates.
    retry : RetryPolicy, optional
        Policy of tasks submitted without ``retry=`` (default: one attempt). The default
        orchestrator takes it from the ``retry_*`` settings: every compile uses it.
    wall_clock : callable
        Wall clock for the display-only ``created_wall``.

    Notes
    -----
    Timeouts (``timeout=`` seconds per attempt): a thread cannot be killed. When an
    attempt on a worker thread overruns, the attempt is recorded as ``"timeout"``, the task
    is retried or fails with ``TimeoutError``, a replacement worker is started, and the
    thread's late result is discarded when it finally returns; the work itself goes on to
    its end (and :meth:`shutdown` with ``wait=True`` waits for it). On the synchronous path
    (:meth:`run`, :meth:`fallback`, ``"inline"``) an overrun is only noticed when the
    attempt returns; its result is then discarded the same way. Work that must really be
    stopped has to run in a process that can be terminated.

    Examples
    --------
    >>> orch = Orchestrator(executor="inline")
    >>> orch.run(lambda x: x + 1, 41, kind="compile", name="f(int64)", engine="jit")
    42
    >>> orch.tasks()[-1].state
    <TaskState.DONE: 'done'>
    """

    def __init__(self, executor: Any = "threads", max_workers: int = 4, *,
                 clock: Callable[[], float] = time.monotonic,
                 rng: "random.Random | None" = None,
                 scheduler: "Scheduler[LiveTask, tuple[str, LiveTask, int]] | None" = None,
                 history: int = 1000, hooks: "HookRegistry | None" = None, client: Any = None,
                 breaker_policy: BreakerPolicy | None = None,
                 retry: RetryPolicy | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        if hooks is None:
            from foxnb.hooks import hooks as default_hooks

            hooks = default_hooks
        self._hooks: HookRegistry = hooks
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng
        # The due-time queue and the worker pool serve retries, timeouts and submit(): made
        # on first use (a cell's synchronous compile that succeeds needs neither).
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._max_workers = max_workers
        self._sched_now: Scheduler[LiveTask, tuple[str, LiveTask, int]] | None = scheduler
        self._pool_now: WorkerPool | None = None
        self._made = threading.Lock()  # creates them once (taken with or without _lock)
        self._history = TaskHistory(history)
        self._breaker_policy = breaker_policy if breaker_policy is not None else BreakerPolicy()
        self._retry = retry if retry is not None else NO_RETRY
        self._breakers: dict[str, CircuitBreaker] = {}
        self._executor: Executor | None = None
        if executor in (_INLINE, _THREADS):
            self._mode = executor
        else:
            from foxnb.orchestrator.executors import external_executor

            self._mode = _EXTERNAL
            self._executor = external_executor(executor, max_workers, client)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # workers wait for ready tasks
        self._timed = threading.Condition(self._lock)  # the timer waits for due events
        self._done = threading.Condition(self._lock)  # shutdown waits for every task to end
        self._timer: threading.Thread | None = None
        self._live: dict[str, LiveTask] = {}
        self._counts = dict.fromkeys(S, 0)
        self._retries = 0
        self._idle = 0
        self._stuck = 0  # workers still running an attempt that timed out
        self._closed = False
        self._cancelling = False

    @property
    def _sched(self) -> "Scheduler[LiveTask, tuple[str, LiveTask, int]]":
        sched = self._sched_now
        if sched is None:
            from foxnb.orchestrator.scheduler import Scheduler

            with self._made:
                if self._sched_now is None:
                    self._sched_now = Scheduler(clock=self._clock)
                sched = self._sched_now
        return sched

    @property
    def _pool(self) -> "WorkerPool":
        pool = self._pool_now
        if pool is None:
            from foxnb.orchestrator.executors import WorkerPool

            with self._made:
                if self._pool_now is None:
                    self._pool_now = WorkerPool(self._max_workers)
                pool = self._pool_now
        return pool

    def _threads(self) -> list[threading.Thread]:
        """The worker threads (none if the pool was never needed)."""
        return [] if self._pool_now is None else self._pool_now.threads

    # -- entry points ------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any, kind: str = "task",
               name: str | None = None, engine: str = "", priority: int = 0,
               timeout: float | None = None, retry: RetryPolicy | None = None,
               breaker: str | None = None, detail: Mapping[str, Any] | None = None,
               **kwargs: Any) -> TaskHandle:
        """Queue ``fn(*args, **kwargs)`` as a task; return its :class:`TaskHandle`.

        Parameters
        ----------
        kind, name, engine : str
            What the record says (``name`` defaults to the function's name).
        priority : int
            Higher runs first among queued tasks (``"threads"`` and ``"inline"``).
        timeout : float, optional
            Seconds per attempt (see the class notes for what it can stop).
        retry : RetryPolicy, optional
            Attempts and backoff; default one attempt.
        breaker : str, optional
            Name of the circuit breaker each attempt goes through (:meth:`breaker`); an
            attempt it refuses is ``"skipped"`` and fails with ``CircuitOpenError``.
        detail : Mapping, optional
            Initial facts for the record's ``detail``.

        Raises
        ------
        RuntimeError
            The orchestrator has been shut down.
        """
        task = self._new(fn, kind, name, engine, priority, timeout, retry, breaker, detail)
        task.fn, task.args, task.kwargs = fn, args, kwargs
        handle = TaskHandle(self, task)
        out = _Out()
        with self._lock:
            self._admit(task, out)
            self._enqueue(task, out)
        self._flush(out)
        if self._mode == _INLINE:
            self._pump(None)
        return handle

    def map(self, fn: Callable[..., Any], items: Iterable[Any], **options: Any) -> list[TaskHandle]:
        """Submit ``fn(item)`` for each item (keywords as :meth:`submit`); return the handles."""
        return [self.submit(fn, item, **options) for item in items]

    def run(self, fn: Callable[..., T], *args: Any, kind: str = "task", name: str | None = None,
            engine: str = "", priority: int = 0, timeout: float | None = None,
            retry: RetryPolicy | None = None, breaker: str | None = None,
            detail: Mapping[str, Any] | None = None, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` as a task in the calling thread; return its result.

        What a cell's compiles use: the kernel's thread does the work, so ``%%foxaot``
        needs no thread pool. A retry waits with the scheduler's ``sleep``. The error of
        the last attempt is raised unchanged (``KeyboardInterrupt`` included). Keywords as
        :meth:`submit`.
        """
        task = self._new(fn, kind, name, engine, priority, timeout, retry, breaker, detail)
        value: T = self._run_sync(task, [(engine, breaker, fn, args, kwargs)], chain=False)
        return value

    def fallback(self, chain: Sequence[tuple[str, Callable[[], T]]], *, kind: str = "compile",
                 name: str | None = None, priority: int = 0, timeout: float | None = None,
                 retry: RetryPolicy | None = None,
                 detail: Mapping[str, Any] | None = None) -> T:
        """Run the ``(engine, build)`` steps in order in the calling thread; return the first
        success.

        A step whose engine's breaker is open is skipped (``"skipped (breaker open)"``);
        a failing step is retried per ``retry`` when its error is transient (a typing
        error is not), then the next step runs — unless the error carries
        ``foxnb_final = True`` (e.g. an error in the user's code: every engine would fail the
        same way), which ends the chain with that error. Every step lands on the task's ``steps``
        with its reason; each attempt records its engine.

        Raises
        ------
        Exception
            The last step's error when every step failed (unchanged), or
            ``CircuitOpenError`` when every step was skipped.
        """
        if not chain:
            raise ValueError("fallback needs at least one (engine, build) step")
        first = chain[0][1]
        task = self._new(first, kind, name, chain[0][0], priority, timeout, retry, None, detail)
        steps: list[_Step] = [(engine, engine, build, (), {}) for engine, build in chain]
        value: T = self._run_sync(task, steps, chain=True)
        return value

    def record_done(self, kind: str, name: str, engine: str, seconds: float,
                    detail: Mapping[str, Any] | None = None,
                    correlation_id: str | None = None, *, finished: float | None = None,
                    finished_wall: float | None = None) -> TaskRecord:
        """Record a task that succeeded without running here: one attempt on ``engine`` of
        ``seconds``, ended at ``finished`` (a reading of this orchestrator's clock; default
        now) and ``finished_wall`` (its wall clock), as one step of a chain. A cache hit
        loaded without the orchestrator is recorded so (:mod:`foxnb.early`); it counts,
        appears in :meth:`tasks` and reaches the ``task`` hooks like any task."""
        if finished is None:
            finished, finished_wall = self._clock(), self._wall_clock()
        elif finished_wall is None:
            finished_wall = self._wall_clock()
        started, created_wall = finished - seconds, finished_wall - seconds
        task = LiveTask(kind, name, engine, 0, correlation_id, started, created_wall, detail,
                        self._retry, None, None)
        out = _Out()
        with self._lock:  # the states a task that ran here goes through, at the given times
            self._admit(task, out)
            self._begin(task, out, engine, now=started)
            self._close_attempt(task, finished, "ok", None)
            task.steps.append(FallbackStep(engine, "ok", None))
            task.finished = finished
            self._set_state(task, S.DONE, out)
            record = task.record()
        self._flush(out)
        return record

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker called ``name`` (an engine's), created on first use."""
        with self._lock:
            found = self._breakers.get(name)
            if found is None:
                found = self._breakers[name] = CircuitBreaker(
                    name, self._breaker_policy, clock=self._clock, on_change=self._on_breaker)
            return found

    def tasks(self, limit: int | None = None, *, state: TaskState | str | None = None,
              correlation_id: str | None = None) -> list[TaskRecord]:
        """Return task records, oldest first, keeping the newest ``limit``; filter by
        ``state`` (a :class:`TaskState` or its value) or ``correlation_id``."""
        wanted = TaskState(state) if state is not None else None
        with self._lock:
            return [t.record() for t in
                    self._history.select(limit, state=wanted, correlation_id=correlation_id)]

    def get(self, task_id: str) -> TaskRecord | None:
        """The record of the task with this id, if it is still in the history."""
        with self._lock:
            task = self._history.get(task_id)
            return None if task is None else task.record()

    def set_history_size(self, size: int) -> None:
        """Keep at most ``size`` finished tasks (``foxnb.config`` ``task_history``)."""
        with self._lock:
            self._history.resize(size)

    def snapshot(self) -> OrchestratorSnapshot:
        """Return the orchestrator's state as immutable values."""
        with self._lock:
            counts = {s.value: n for s, n in self._counts.items()}
            workers = len(self._threads()) if self._mode == _THREADS else 0
            recent = tuple(t.record() for t in self._history.recent(_RECENT))
            breakers = list(self._breakers.values())
            snap = OrchestratorSnapshot(
                MappingProxyType(counts), counts["queued"] + counts["waiting"],
                counts["running"], workers, not self._closed, (), recent, self._retries,
                len(self._history))
        return snap._replace(breakers=tuple(b.snapshot() for b in breakers))

    def shutdown(self, wait: bool = True, cancel_pending: bool = False) -> list[TaskRecord]:
        """Stop accepting work; every entry point then raises ``RuntimeError``.

        Parameters
        ----------
        wait : bool
            Wait until the remaining work has ended (retries included) and every worker
            thread has exited.
        cancel_pending : bool
            Cancel queued tasks and tasks waiting for a retry (running ones finish; they
            are not retried).

        Returns
        -------
        list of TaskRecord
            The tasks this call cancelled.
        """
        out = _Out()
        with self._lock:
            self._closed = True
            cancelled = []
            if cancel_pending:
                self._cancelling = True
                for task in list(self._live.values()):
                    if task.state in (S.QUEUED, S.WAITING):
                        self._cancel_locked(task, out)
                        cancelled.append(task.record())
            self._wake_all()
        self._flush(out)
        if not wait:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=cancel_pending)
            return cancelled
        if self._mode == _INLINE:
            self._pump(None, drain=True)
        me = threading.current_thread()
        with self._lock:
            if me in self._threads():
                raise RuntimeError("shutdown(wait=True) inside a task would wait for itself; "
                                   "use shutdown(wait=False)")
            if self._mode != _INLINE:
                self._done.wait_for(lambda: not self._live)
            threads = [*self._threads(), *([self._timer] if self._timer else [])]
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=cancel_pending)
        if threads:
            self._pool.join(threads)
        return cancelled

    # -- creating and queueing -----------------------------------------------------------
    def _new(self, fn: Callable[..., Any], kind: str, name: str | None, engine: str,
             priority: int, timeout: float | None, retry: RetryPolicy | None,
             breaker: str | None, detail: Mapping[str, Any] | None) -> LiveTask:
        if name is None:
            name = getattr(fn, "__qualname__", None) or repr(fn)
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        task = LiveTask(kind, name, engine, priority, current_correlation_id(), self._clock(),
                        self._wall_clock(), detail, retry if retry is not None else self._retry,
                        breaker, timeout)
        if self._mode != _EXTERNAL:
            task.ctx = contextvars.copy_context()
        return task

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this foxnb orchestrator has been shut down: create a new "
                               "Orchestrator (for the default one, call "
                               "foxnb.orchestrator.set_orchestrator(None) first)")

    def _admit(self, task: LiveTask, out: _Out) -> None:
        self._check_open()
        self._history.add(task)
        self._live[task.id] = task
        self._counts[S.QUEUED] += 1
        self._note(task, out)

    def _enqueue(self, task: LiveTask, out: _Out) -> None:
        if self._mode == _EXTERNAL:
            out.dispatch.append(task)
            return
        self._sched.push_ready(task, task.priority)
        if self._mode == _THREADS:
            self._ensure_worker()
            if self._idle:  # else every worker is busy and will look at the queue
                self._work.notify()

    def _ensure_worker(self) -> None:
        pool = self._pool
        # An idle worker notified but not yet awake still counts as idle: compare with the
        # tasks waiting, or a burst of submissions would all go to that one worker.
        if (self._sched.ready_count > self._idle
                and len(pool.threads) < pool.max_workers + self._stuck):
            if not pool.threads:
                from foxnb.orchestrator.executors import shut_down_at_exit

                shut_down_at_exit(self)
            pool.start(self._worker_loop)

    def _ensure_timer(self) -> None:
        if self._mode == _INLINE:
            return
        if self._timer is None:
            from foxnb.orchestrator.executors import shut_down_at_exit

            shut_down_at_exit(self)
            self._timer = threading.Thread(target=self._timer_loop, name="foxnb-timer")
            self._timer.start()
        else:
            self._timed.notify()

    def _wake_all(self) -> None:
        self._work.notify_all()
        self._timed.notify_all()
        self._done.notify_all()

    def _next_ready(self) -> LiveTask | None:
        while True:
            task = self._sched.pop_ready()
            if task is None or task.state is S.QUEUED:
                return task  # cancelled tasks stay in the heap until popped

    # -- state changes (under the lock) ------------------------------------------------
    def _set_state(self, task: LiveTask, state: TaskState, out: _Out) -> None:
        self._counts[task.state] -= 1
        self._counts[state] += 1
        task.state = state
        if state.terminal:
            del self._live[task.id]
            self._history.finished(task)
            out.settled.append(task)  # its waiters wake once its events are delivered
            if task.callbacks:
                handle = task.handle_ref()
                if handle is not None:
                    out.callbacks.extend((handle, cb) for cb in task.callbacks)
                task.callbacks = None
            if self._closed and not self._live:
                self._wake_all()
        self._note(task, out)

    def _note(self, task: LiveTask, out: _Out) -> None:
        task.changed()
        if self._hooks.has("task") or _log.isEnabledFor(logging.DEBUG):
            out.records.append(task.record())

    def _begin(self, task: LiveTask, out: _Out, engine: str | None = None,
               now: float | None = None) -> int:
        if now is None:
            now = self._clock()
        if task.started is None:
            task.started = now
        task.gen += 1
        task.attempts.append(Attempt(len(task.attempts) + 1, now, None, "running", None,
                                     task.engine if engine is None else engine))
        self._set_state(task, S.RUNNING, out)
        if task.timeout is not None and self._mode != _INLINE and not task.sync:
            self._sched.push_at(self._sched.clock() + task.timeout, (_DEADLINE, task, task.gen))
            self._ensure_timer()
        return task.gen

    def _end(self, task: LiveTask, gen: int, result: _Result, out: _Out, *,
             sync: bool = False, step: str | None = None, more: bool = False) -> str:
        """End attempt ``gen`` with ``result``; return "done", "retry", "next" (a later step
        may run), "failed" or "stale" (the attempt had already ended: result discarded)."""
        ok, value, exc, outcome = result
        if task.gen != gen or task.state is not S.RUNNING:
            if self._mode == _THREADS and not sync:
                self._stuck -= 1  # a worker is back from an attempt that timed out
            return "stale"
        now = self._clock()
        started = task.attempts[-1].started
        if ok and task.timeout is not None and now - started > task.timeout:
            ok, exc, outcome = False, self._timeout_error(task), "timeout"
        self._close_attempt(task, now, outcome, exc)
        if ok:
            if step is not None:
                task.steps.append(FallbackStep(step, "ok", None))
                task.engine = step  # the engine that delivered
            handle = task.handle_ref()
            if handle is not None:
                handle._result = value
            task.finished = now
            self._set_state(task, S.DONE, out)
            return "done"
        assert exc is not None
        return self._after_failure(task, exc, now, out, sync=sync, step=step, more=more)

    def _close_attempt(self, task: LiveTask, now: float, outcome: str,
                       exc: BaseException | None) -> None:
        last = task.attempts[-1]
        task.attempts[-1] = Attempt(last.number, last.started, now, outcome,
                                    None if exc is None else describe_error(exc), last.engine)

    def _after_failure(self, task: LiveTask, exc: BaseException, now: float, out: _Out, *,
                       sync: bool, step: str | None = None, more: bool = False) -> str:
        policy = task.retry
        if (isinstance(exc, Exception) and not self._cancelling
                and policy.should_retry(len(task.attempts), exc)):
            if self._rng is None:
                import random

                self._rng = random.Random()
            delay = policy.delay(len(task.attempts) - 1, self._rng)
            self._retries += 1
            task.due = self._sched.clock() + delay
            self._set_state(task, S.WAITING, out)
            if not sync:
                self._sched.push_at(task.due, (_RETRY, task, task.gen))
                self._ensure_timer()
            return "retry"
        if step is not None:
            task.steps.append(FallbackStep(step, "failed", describe_error(exc)))
        if more and isinstance(exc, Exception) and getattr(exc, "foxnb_final", False) is not True:
            task.changed()
            return "next"
        task.exc = exc
        task.error = describe_error(exc)
        task.finished = now
        self._set_state(task, S.FAILED if isinstance(exc, Exception) else S.CANCELLED, out)
        return "failed"

    def _timeout_error(self, task: LiveTask) -> TimeoutError:
        return TimeoutError(f"{task.kind} {task.name} ({task.id}) ran longer than its "
                            f"{task.timeout:g} s timeout; its late result is discarded")

    def _cancel_locked(self, task: LiveTask, out: _Out) -> None:
        task.gen += 1
        task.finished = self._clock()
        self._set_state(task, S.CANCELLED, out)

    def _fire(self, events: list[tuple[str, LiveTask, int]], out: _Out) -> None:
        for what, task, gen in events:
            if task.gen != gen:
                continue
            if what == _RETRY and task.state is S.WAITING:
                self._set_state(task, S.QUEUED, out)
                self._enqueue(task, out)
            elif what == _DEADLINE and task.state is S.RUNNING:
                task.gen += 1  # the late result loses
                now = self._clock()
                exc = self._timeout_error(task)
                self._close_attempt(task, now, "timeout", exc)
                if self._mode == _THREADS:
                    self._stuck += 1
                    self._after_failure(task, exc, now, out, sync=False)
                    self._ensure_worker()  # in place of the stuck one
                else:
                    if task.future is not None:
                        out.futures.append(task.future)
                    self._after_failure(task, exc, now, out, sync=False)

    # -- running -----------------------------------------------------------------------
    def _call(self, task: LiveTask, fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any], brk: CircuitBreaker | None,
              ) -> _Result:
        """One call, outside the lock: (ok, value, error, outcome)."""
        handle = task.handle_ref() or TaskHandle(self, task)
        assert task.ctx is not None
        try:
            # A copy per attempt: an attempt that timed out may still be running in it.
            value = task.ctx.copy().run(_invoke, handle, fn, args, kwargs)
        except Exception as exc:
            if brk is not None:
                brk.record(not counts_as_failure(exc))
            return False, None, exc, "error"
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: not the engine's fault
            if brk is not None:
                brk.release()
            return False, None, exc, "cancelled"
        if brk is not None:
            brk.record(True)
        return True, value, None, "ok"

    def _perform(self, task: LiveTask) -> _Result:
        """Run one attempt of a started task, outside the lock, through its breaker."""
        brk = None if task.breaker is None else self.breaker(task.breaker)
        if brk is not None and not brk.allow():
            return (False, None, CircuitOpenError(
                f"circuit breaker {brk.name!r} is open: {task.kind} {task.name} skipped"),
                "skipped")
        assert task.fn is not None
        return self._call(task, task.fn, task.args, task.kwargs, brk)

    def _attempt(self, task: LiveTask, gen: int) -> None:
        """Run attempt ``gen`` of a queued task (inline) and end it."""
        result = self._perform(task)
        out = _Out()
        with self._lock:
            self._end(task, gen, result, out)
        self._flush(out)

    def _worker_loop(self) -> None:
        me = threading.current_thread()
        pool = self._pool
        ran: tuple[LiveTask, int, _Result] | None = None
        while True:
            out = _Out()
            exiting = False
            with self._lock:  # one hold: end the attempt just run, begin the next
                if ran is not None:
                    self._end(*ran, out)
                task = self._next_ready()
                # Nothing ready: deliver what the end produced before waiting (next turn).
                while task is None and ran is None:
                    if ((self._closed and not self._live)
                            or len(pool.threads) > pool.max_workers + self._stuck):
                        pool.exited(me)
                        exiting = True
                        break
                    self._idle += 1
                    self._work.wait()
                    self._idle -= 1
                    task = self._next_ready()
                if task is not None:
                    gen = self._begin(task, out)
            self._flush(out)
            if exiting:
                return
            ran = None if task is None else (task, gen, self._perform(task))

    def _timer_loop(self) -> None:
        sched = self._sched
        while True:
            out = _Out()
            with self._lock:
                while True:
                    if self._closed and not self._live:
                        return
                    now = sched.clock()
                    events = sched.pop_due(now)
                    if events:
                        self._fire(events, out)
                        break
                    due = sched.next_due()
                    self._timed.wait(None if due is None else max(due - now, 0.0))
            self._flush(out)

    def _pump(self, until: LiveTask | None, *, drain: bool = False,
              deadline: float | None = None) -> None:
        """Inline executor: run due and ready tasks in this thread; with ``until``, also
        sleep (the scheduler's sleep) until that task has ended; with ``drain``, until no
        task is queued or waiting; stop at ``deadline`` (scheduler time)."""
        sched = self._sched
        while True:
            out = _Out()
            wait = None
            with self._lock:
                now = sched.clock()
                self._fire(sched.pop_due(now), out)
                task = self._next_ready()
                if task is not None:
                    gen = self._begin(task, out)
                elif ((until is not None and not until.state.terminal)
                      or (drain and self._counts[S.WAITING])):
                    due = sched.next_due()
                    if due is not None and (deadline is None or now < deadline):
                        wait = due - now if deadline is None else min(due, deadline) - now
            self._flush(out)
            if task is not None:
                self._attempt(task, gen)
                if task.exc is not None and not isinstance(task.exc, Exception):
                    raise task.exc  # an interrupt in this thread stops the pump too
            elif wait is None:
                return
            else:
                sched.sleep(max(wait, 0.0))

    def _run_sync(self, task: LiveTask,
                  steps: list[_Step], *, chain: bool) -> Any:
        TaskHandle(self, task)  # current_task() inside the attempts
        task.sync = True
        out = _Out()
        with self._lock:
            self._admit(task, out)
        self._flush(out)
        skipped: list[str] = []
        for i, (engine, breaker_name, fn, args, kwargs) in enumerate(steps):
            more = i < len(steps) - 1
            brk = None if breaker_name is None else self.breaker(breaker_name)
            if chain and brk is not None and not brk.allow():
                skipped.append(engine)
                with self._lock:
                    task.steps.append(FallbackStep(engine, "skipped (breaker open)",
                                                   f"circuit breaker {engine!r} is open"))
                    task.changed()
                continue
            while True:
                out = _Out()
                with self._lock:
                    if task.state is S.CANCELLED:
                        break
                    if task.state is S.WAITING:
                        self._set_state(task, S.QUEUED, out)
                    gen = self._begin(task, out, engine)
                self._flush(out)
                if not chain and brk is not None and not brk.allow():
                    result: _Result = (
                        False, None, CircuitOpenError(
                            f"circuit breaker {brk.name!r} is open: {task.kind} {task.name} "
                            "skipped"), "skipped")
                else:
                    result = self._call(task, fn, args, kwargs, brk)
                out = _Out()
                with self._lock:
                    verdict = self._end(task, gen, result, out, sync=True,
                                        step=engine if chain else None, more=more)
                self._flush(out)
                if verdict == "done":
                    return result[1]
                if verdict != "retry":
                    break
                assert task.due is not None
                self._sched.sleep(max(task.due - self._sched.clock(), 0.0))
            if task.state.terminal:
                break
        if not task.state.terminal:  # every step was skipped
            exc = CircuitOpenError(f"every engine's circuit breaker is open "
                                   f"({', '.join(skipped)}): {task.kind} {task.name} not run")
            out = _Out()
            with self._lock:
                task.exc, task.error, task.finished = exc, describe_error(exc), self._clock()
                self._set_state(task, S.FAILED, out)
            self._flush(out)
        if task.exc is not None:
            raise task.exc
        from concurrent.futures import CancelledError

        raise CancelledError(f"task {task.id} ({task.kind} {task.name}) was cancelled")

    # -- handles -------------------------------------------------------------------------
    def _record_of(self, task: LiveTask) -> TaskRecord:
        with self._lock:
            return task.record()

    def _set_detail(self, task: LiveTask, facts: Mapping[str, Any]) -> None:
        with self._lock:
            if task.detail is None:
                task.detail = {}
            task.detail.update(facts)
            task.changed()

    def _wait(self, task: LiveTask, timeout: float | None) -> None:
        if task.state.terminal:
            return
        ended: bool
        if self._mode == _INLINE:
            deadline = None if timeout is None else self._sched.clock() + timeout
            self._pump(task, deadline=deadline)
            ended = task.state.terminal
        else:
            waiter = threading.Lock()  # held until the task settles (cheaper than an Event)
            waiter.acquire()
            with self._lock:
                if task.settled:
                    return
                if task.waiters is None:
                    task.waiters = []
                task.waiters.append(waiter)
            if task.settled:  # settled meanwhile: _flush may have missed this waiter
                return
            ended = waiter.acquire(timeout=-1 if timeout is None else timeout)
        if not ended:
            raise TimeoutError(f"task {task.id} ({task.kind} {task.name}) has not ended "
                               f"after {timeout} s")

    def _cancel(self, task: LiveTask) -> bool:
        out = _Out()
        with self._lock:
            if task.state is S.CANCELLED:
                return True
            if task.state not in (S.QUEUED, S.WAITING):
                return False
            self._cancel_locked(task, out)
        self._flush(out)
        return True

    def _add_callback(self, handle: TaskHandle, fn: Callable[[TaskHandle], None]) -> None:
        task = handle._task
        with self._lock:
            if not task.state.terminal:
                if task.callbacks is None:
                    task.callbacks = []
                task.callbacks.append(fn)
                return
        _call_back(handle, fn)

    # -- external executors --------------------------------------------------------------
    def _dispatch(self, task: LiveTask) -> None:
        out = _Out()
        with self._lock:
            if task.state is not S.QUEUED:
                return
            gen = self._begin(task, out)
        self._flush(out)
        brk = None if task.breaker is None else self.breaker(task.breaker)
        if brk is not None and not brk.allow():
            self._end_external(task, gen, (False, None, CircuitOpenError(
                f"circuit breaker {brk.name!r} is open: {task.kind} {task.name} skipped"),
                "skipped"))
            return
        assert self._executor is not None and task.fn is not None
        try:
            future = self._executor.submit(task.fn, *task.args, **task.kwargs)
        except Exception as exc:
            self._end_external(task, gen, (False, None, exc, "error"))
            return
        task.future = future
        future.add_done_callback(partial(self._external_done, task, gen, brk))

    def _external_done(self, task: LiveTask, gen: int, brk: CircuitBreaker | None,
                       future: "FutureLike") -> None:
        if future.cancelled():
            out = _Out()
            with self._lock:
                if task.gen == gen and task.state is S.RUNNING:
                    now = self._clock()
                    self._close_attempt(task, now, "cancelled", None)
                    task.finished = now
                    self._set_state(task, S.CANCELLED, out)
            self._flush(out)
            return
        exc = future.exception()
        if brk is not None:
            brk.record(exc is None or not counts_as_failure(exc))
        self._end_external(task, gen, (exc is None, None if exc else future.result(), exc,
                                       "ok" if exc is None else "error"))

    def _end_external(self, task: LiveTask, gen: int,
                      result: _Result) -> None:
        out = _Out()
        with self._lock:
            self._end(task, gen, result, out)
        self._flush(out)

    # -- delivery (outside the lock) -----------------------------------------------------
    def _flush(self, out: _Out) -> None:
        if out.records:
            debug = _log.isEnabledFor(logging.DEBUG)
            for rec in out.records:
                if debug:
                    _log.debug("task %s %s %s: %s", rec.id, rec.kind, rec.name, rec.state.value,
                               extra={"task_id": rec.id, "task_kind": rec.kind,
                                      "task_state": rec.state.value, "task_engine": rec.engine})
                try:
                    self._hooks.emit("task", rec)
                except Exception:  # a hook registry of the user's: never hide the work
                    _log.warning("foxnb task hook failed on %s", rec.id, exc_info=True)
        for handle, fn in out.callbacks:
            _call_back(handle, fn)
        for future in out.futures:
            future.cancel()
        for task in out.dispatch:
            self._dispatch(task)
        for task in out.settled:
            # result() returns after the task's hooks and callbacks ran (metrics include it).
            # No lock: _wait registers under the lock and then reads `settled` again, so a
            # waiter this loop misses sees settled=True and does not block.
            task.settled = True
            waiters, task.waiters = task.waiters, None
            for waiter in waiters or ():
                waiter.release()

    def _on_breaker(self, event: "BreakerEvent") -> None:
        _log.info("circuit breaker %s: %s -> %s (%s)", event.name, event.old, event.new,
                  event.reason, extra={"breaker": event.name, "breaker_state": event.new})
        try:
            self._hooks.emit("breaker", event)
        except Exception:
            _log.warning("foxnb breaker hook failed on %s", event.name, exc_info=True)

    def __repr__(self) -> str:
        state = "accepting" if not self._closed else "shut down"
        return f"<Orchestrator {self._mode} {state}, {len(self._live)} unfinished>"


def _call_back(handle: TaskHandle, fn: Callable[[TaskHandle], None]) -> None:
    try:
        fn(handle)
    except Exception:
        _log.warning("foxnb task done-callback %r failed on %s", fn, handle.id, exc_info=True)
