//! A persistent pool of worker threads for the matrix-vector products (native only).
//!
//! A token of SmolLM2-135M runs ~150 products big enough to split; spawning threads for each
//! (`std::thread::scope`) costs tens of microseconds a product. The pool's workers live for the
//! whole process. Between jobs a worker first waits actively for [`SPIN`] (yielding its core
//! between looks at a job counter, so on a busy machine other programs get the core), then
//! sleeps on a condition variable; the caller waits for the last task the same way. Waiting
//! awake matters: a worker woken from sleep is often queued on the waker's own core when none
//! is idle, and runs only once the caller blocks, which serializes the two halves of a product.
//! The split products of one token come within ~100 µs of each other, so during generation the
//! workers stay awake, and they sleep [`SPIN`] after the last one.
//!
//! [`run`] hands out task indices `0..n_tasks`; the calling thread takes tasks too and returns
//! only when every task has finished, so the task closure may borrow from the caller's stack.
//! Which thread runs which task never changes what a task computes, so results do not depend
//! on the number of workers. One job runs at a time: a caller that finds the pool busy (another
//! thread's product, e.g. parallel tests) runs its tasks itself instead of waiting.

use std::any::Any;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant};

/// How long an idle worker (or a caller waiting for the last task) spins before sleeping.
const SPIN: Duration = Duration::from_micros(200);

/// The task closure of the running job, its lifetime erased (see the SAFETY note in [`run`]).
#[derive(Clone, Copy)]
struct TaskPtr(*const (dyn Fn(usize) + Sync + 'static));

// SAFETY: the closure is `Sync`, so calling it from several threads through a shared pointer is
// allowed; the pointer is only dereferenced while the job that owns it is running.
unsafe impl Send for TaskPtr {}

struct Job {
    task: TaskPtr,
    n_tasks: usize,
    /// Next task index to hand out.
    next: usize,
    /// Tasks handed out and not finished yet.
    running: usize,
    /// The first panic of a task, re-raised on the calling thread.
    panic: Option<Box<dyn Any + Send>>,
}

impl Job {
    fn finished(&self) -> bool {
        self.next == self.n_tasks && self.running == 0
    }
}

struct Pool {
    job: Mutex<Option<Job>>,
    /// Workers wait here for a job.
    work: Condvar,
    /// The caller waits here for the last task of its job.
    done: Condvar,
    /// Held by the caller for the whole job: one job at a time.
    busy: Mutex<()>,
    /// Workers started so far.
    workers: Mutex<usize>,
    /// Jobs installed so far (changed under the `job` lock; read without it while spinning).
    epoch: AtomicU64,
    /// Tasks of the current job not finished yet (read without the lock while spinning).
    unfinished: AtomicUsize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        job: Mutex::new(None),
        work: Condvar::new(),
        done: Condvar::new(),
        busy: Mutex::new(()),
        workers: Mutex::new(0),
        epoch: AtomicU64::new(0),
        unfinished: AtomicUsize::new(0),
    })
}

/// Lock without caring about poisoning: tasks run outside the lock (under `catch_unwind`),
/// so a poisoned lock never guards half-updated state.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `task(i)` for every `i` in `0..n_tasks` on the calling thread and up to
/// `n_tasks − 1` pool workers, and returns when all have finished. A panic in a task is
/// re-raised here after the others have finished.
pub fn run(n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
    if n_tasks <= 1 {
        (0..n_tasks).for_each(task);
        return;
    }
    let p = pool();
    let _busy = match p.busy.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => {
            (0..n_tasks).for_each(task);
            return;
        }
    };
    start_workers(p, n_tasks - 1);
    // SAFETY: only the lifetime is erased. The pointer is stored in the job, and workers call it
    // only for tasks they claimed from that job; this function does not return (nor unwind)
    // before every claimed task has finished and the job has been removed, so no call can
    // outlive the borrow of `task`.
    let erased: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(task) };
    let job = Job { task: TaskPtr(erased), n_tasks, next: 0, running: 0, panic: None };
    {
        let mut guard = lock(&p.job);
        *guard = Some(job);
        p.unfinished.store(n_tasks, Ordering::Release);
        p.epoch.fetch_add(1, Ordering::Release);
    }
    p.work.notify_all();

    let guard = work_on_job(p, lock(&p.job));
    drop(guard);
    spin_while(|| p.unfinished.load(Ordering::Acquire) > 0);
    let mut guard = lock(&p.job);
    while !guard.as_ref().is_some_and(Job::finished) {
        guard = p.done.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
    let job = guard.take().expect("the job stays until its caller removes it");
    drop(guard);
    if let Some(payload) = job.panic {
        std::panic::resume_unwind(payload);
    }
}

/// Claims and runs tasks of the current job until none is left to claim; returns the lock.
fn work_on_job<'a>(p: &'a Pool, mut guard: MutexGuard<'a, Option<Job>>) -> MutexGuard<'a, Option<Job>> {
    loop {
        let Some(job) = guard.as_mut().filter(|j| j.next < j.n_tasks) else { return guard };
        let (i, task) = (job.next, job.task);
        job.next += 1;
        job.running += 1;
        drop(guard);
        // SAFETY: task `i` was claimed from the running job, whose caller waits for it (see `run`).
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*task.0)(i) }));
        guard = lock(&p.job);
        let job = guard.as_mut().expect("a job with a running task is not removed");
        job.running -= 1;
        p.unfinished.fetch_sub(1, Ordering::Release);
        if let Err(payload) = result {
            job.panic.get_or_insert(payload);
        }
        if job.finished() {
            p.done.notify_all();
        }
    }
}

fn start_workers(p: &'static Pool, wanted: usize) {
    let mut n = lock(&p.workers);
    while *n < wanted {
        let spawned = std::thread::Builder::new().name(format!("quantlab-matvec-{}", *n)).spawn(move || worker(p));
        if spawned.is_err() {
            // Fewer workers only means the caller runs more of the tasks itself.
            return;
        }
        *n += 1;
    }
}

fn worker(p: &'static Pool) {
    let mut guard = lock(&p.job);
    loop {
        guard = work_on_job(p, guard);
        // Nothing to claim: wait for the next job, spinning first, then asleep.
        let seen = p.epoch.load(Ordering::Acquire);
        drop(guard);
        spin_while(|| p.epoch.load(Ordering::Acquire) == seen);
        guard = lock(&p.job);
        while p.epoch.load(Ordering::Acquire) == seen {
            guard = p.work.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Spins while `busy()` holds, for at most [`SPIN`].
fn spin_while(busy: impl Fn() -> bool) {
    let start = Instant::now();
    while busy() {
        // Yielding rather than pausing: on an idle machine it returns at once (a spin), on a
        // busy one it hands the core to other work instead of burning the time slice.
        std::thread::yield_now();
        if start.elapsed() > SPIN {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_task_runs_exactly_once() {
        for n in [0, 1, 2, 3, 7, 64] {
            let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            run(n, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "n = {n}");
        }
    }

    #[test]
    fn concurrent_callers_and_borrowed_outputs() {
        // Several threads submit at once: each either gets the pool or runs its tasks itself.
        std::thread::scope(|s| {
            for t in 0..4usize {
                s.spawn(move || {
                    for round in 0..50 {
                        let out: Vec<Mutex<usize>> = (0..5).map(|_| Mutex::new(0)).collect();
                        run(5, &|i| *lock(&out[i]) = i * t + round);
                        let got: Vec<usize> = out.iter().map(|m| *lock(m)).collect();
                        assert_eq!(got, (0..5).map(|i| i * t + round).collect::<Vec<_>>());
                    }
                });
            }
        });
    }

    #[test]
    fn a_panicking_task_is_reraised_and_the_pool_still_works() {
        let r = std::panic::catch_unwind(|| run(4, &|i| assert!(i != 2, "task 2 fails")));
        assert!(r.is_err());
        let hits = AtomicUsize::new(0);
        run(4, &|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 4);
    }
}
