//! What the crash tests share (`tests/crash.rs`, `orchflow-agent/tests/agent_crash.rs`): the
//! randomness, the side-effect log, and workers (the test binary re-executed) that are SIGKILLed
//! after a delay, and the runs under test. Included with `#[path]`; each test keeps its own flow
//! and its own checks.

use std::fmt::Display;
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The signal `Child::kill` sends on Unix.
const SIGKILL: i32 = 9;

/// A deterministic scrambler (splitmix64's finaliser), so that every value depends on every input.
pub fn mix(x: u64, salt: u64) -> u64 {
    let mut z = x ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// A seed from the process id and the clock (never 0).
pub fn seeded() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    mix(nanos ^ (u64::from(std::process::id()) << 40), 0xC0FFEE) | 1
}

/// xorshift64*, for the driver's kill delays.
pub struct Rng(u64);

impl Rng {
    /// From `seed` (made odd, so never 0).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = xorshift(self.0);
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Timing randomness for steps and tools: one shared xorshift state per process.
pub fn shared_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    // Seed once (a lost race keeps the winner's seed), then step.
    let _ = STATE.compare_exchange(0, seeded(), Ordering::Relaxed, Ordering::Relaxed);
    let previous = STATE
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(xorshift(x)))
        .expect("the update always succeeds");
    xorshift(previous).wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11
}

/// The lines of a side-effect log (none if it does not exist yet). Every line must be complete.
pub fn read_log(path: &Path) -> Vec<String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{}: torn last line: {text:?}",
        path.display()
    );
    text.lines().map(str::to_owned).collect()
}

/// How a test binary re-executes itself as a worker: the `#[ignore]`d test to run and the names
/// of the environment variables that tell it to be the worker and where to work.
pub struct Worker {
    pub test: &'static str,
    pub worker_env: &'static str,
    pub dir_env: &'static str,
    pub run_env: &'static str,
    pub log_env: &'static str,
}

/// How one session (one worker) ended.
pub enum Ended {
    Killed,
    Completed,
}

impl Worker {
    pub fn spawn(&self, dir: &Path, run_id: impl Display, log: &Path, stderr: &Path) -> Child {
        self.spawn_with(dir, run_id, log, stderr, &[])
    }

    /// Like [`spawn`](Self::spawn), with more environment variables (a worker's tag, a mode).
    pub fn spawn_with(
        &self,
        dir: &Path,
        run_id: impl Display,
        log: &Path,
        stderr: &Path,
        env: &[(&str, &str)],
    ) -> Child {
        let exe = std::env::current_exe().expect("the test binary");
        Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                self.test,
                "--nocapture",
                "--test-threads=1",
            ])
            .env(self.worker_env, "1")
            .env(self.dir_env, dir)
            .env(self.run_env, run_id.to_string())
            .env(self.log_env, log)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(stderr).expect("the worker's stderr file"))
            .spawn()
            .expect("spawn the worker")
    }
}

/// Kills `child` with SIGKILL after `delay` unless it has exited. `Err` is the status of a
/// worker that failed.
pub fn kill_after(mut child: Child, delay: Duration) -> Result<Ended, ExitStatus> {
    std::thread::sleep(delay);
    match child.try_wait().expect("poll the worker") {
        Some(status) if status.success() => Ok(Ended::Completed),
        Some(status) => Err(status),
        None => {
            child.kill().expect("kill the worker");
            let status = child.wait().expect("reap the worker");
            if was_killed(status) {
                Ok(Ended::Killed)
            } else if status.success() {
                Ok(Ended::Completed) // it finished between the poll and the kill
            } else {
                Err(status)
            }
        }
    }
}

/// Whether a worker ended by SIGKILL.
pub fn was_killed(status: ExitStatus) -> bool {
    status.signal() == Some(SIGKILL)
}

/// Waits for a worker that is not killed, at most `timeout`.
pub fn wait_uninterrupted(
    child: &mut Child,
    timeout: Duration,
    what: &dyn Fn() -> String,
) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the worker") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}: a worker ran for more than {timeout:?}", what());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The number of kills to reach (`kills_env`, else `default`) and the seed of the kill delays
/// (`seed_env`, else [`seeded`]).
pub fn kills_and_seed(kills_env: &str, seed_env: &str, default: usize) -> (usize, u64) {
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
    };
    let kills = number(kills_env).map_or(default, |k| k as usize);
    (kills, number(seed_env).unwrap_or_else(seeded))
}

/// A new directory under the system's temporary directory, for the runs of one test.
pub fn scratch_root(prefix: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let root = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&root).expect("create the test's directory");
    root
}

/// One run under test: the directory its workers work in, their side-effect log and stderr,
/// and how many workers it has taken and how many of them were killed.
pub struct Trial<R> {
    pub dir: PathBuf,
    pub log: PathBuf,
    pub stderr: PathBuf,
    pub run_id: R,
    pub spawns: usize,
    /// Counted by the test, which knows whether a session was killed.
    pub kills: usize,
}

impl<R: Display + Copy> Trial<R> {
    /// A run working in `dir` (created).
    pub fn new(dir: PathBuf, run_id: R) -> Self {
        fs::create_dir_all(&dir).expect("create the run's directory");
        Trial {
            log: dir.join("effects.log"),
            stderr: dir.join("worker.stderr"),
            dir,
            run_id,
            spawns: 0,
            kills: 0,
        }
    }

    /// The run, for messages.
    pub fn what(&self) -> String {
        format!(
            "run {} in {} (after {} spawns, {} kills)",
            self.run_id,
            self.dir.display(),
            self.spawns,
            self.kills
        )
    }

    pub fn worker_failed(&self, status: ExitStatus) -> ! {
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        panic!(
            "{}: the worker failed ({status}); its stderr:\n{stderr}",
            self.what()
        );
    }

    /// One worker, SIGKILLed after `delay` if it is still running; a worker that fails fails the
    /// test, and so does a run not complete after `max_spawns` workers.
    pub fn session(&mut self, worker: &Worker, delay: Duration, max_spawns: usize) -> Ended {
        assert!(
            self.spawns < max_spawns,
            "{}: not complete after {max_spawns} workers",
            self.what()
        );
        self.spawns += 1;
        let child = worker.spawn(&self.dir, self.run_id, &self.log, &self.stderr);
        match kill_after(child, delay) {
            Ok(ended) => ended,
            Err(status) => self.worker_failed(status),
        }
    }

    /// One more worker, not killed, which must succeed within `timeout` (for a completed run:
    /// it must return the result and run nothing).
    pub fn rerun(&self, worker: &Worker, timeout: Duration, what: &dyn Fn() -> String) {
        let mut child = worker.spawn(&self.dir, self.run_id, &self.log, &self.stderr);
        let status = wait_uninterrupted(&mut child, timeout, what);
        if !status.success() {
            self.worker_failed(status);
        }
    }
}
