//! The `legato` binary as a real process, the one harness every test of a process uses:
//! `legato serve` or `legato function crud|streaming|subsonic`, started on a free port in a
//! known environment (the test's own is not passed on), ready once `/healthz` answers. Its
//! log (stderr) is read line by line as it is written, so a test can search it while the
//! process runs, and a [`Tripwire`] can signal the process the instant a line shows (SIGSTOP
//! on "source read; processing" freezes a worker mid-job, deterministically). Then: signals,
//! SIGTERM and wait, kill -9, the exit status, peak RSS, its open connections.
//!
//! Also the binary run to completion ([`command`], [`Run`]).

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tempfile::TempDir;

use crate::{raw, wait};

/// A free loopback port (bound, read and released; the kernel does not hand it out again
/// at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the binary runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `legato serve --listen … --data …`: everything in one process, the functions under
    /// `/function/…`.
    Serve,
    /// `legato function crud`, configured from the environment as OpenFaaS does
    /// (`LEGATO_LISTEN`, `LEGATO_SECRETS_DIR`).
    Crud,
    /// `legato function streaming`.
    Streaming,
    /// `legato function subsonic`.
    Subsonic,
}

impl Mode {
    fn function(self) -> Option<&'static str> {
        match self {
            Self::Serve => None,
            Self::Crud => Some("crud"),
            Self::Streaming => Some("streaming"),
            Self::Subsonic => Some("subsonic"),
        }
    }
}

/// Variables passed on from the test's environment; everything else is cleared, so neither a
/// `LEGATO_*` setting nor of-watchdog's `healthcheck_interval` of the caller changes the
/// process under test.
const PASSED_ON: &[&str] = &["PATH", "TMPDIR", "RUST_BACKTRACE"];

/// A signal sent by the harness to a process the moment a line of its log contains `needle`;
/// fires once, for the first process (of those it is given to) that logs it.
pub struct Tripwire {
    needle: String,
    signal: &'static str,
    fired: Mutex<Option<(u32, String)>>,
}

impl Tripwire {
    /// `signal` is a name as `kill(1)` takes it: `STOP`, `KILL`, `TERM`.
    pub fn new(needle: &str, signal: &'static str) -> Arc<Self> {
        Arc::new(Self {
            needle: needle.to_owned(),
            signal,
            fired: Mutex::new(None),
        })
    }

    /// The process it fired on and the line that tripped it (the signal is sent by then).
    pub fn fired(&self) -> Option<(u32, String)> {
        self.fired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (polling) until it has fired: the pid it signalled and the line.
    pub fn wait(&self, within: Duration) -> (u32, String) {
        wait::until(
            within,
            &format!("a log line with {:?}", self.needle),
            || self.fired(),
        )
    }

    /// Called by a log reader with each line of process `pid`.
    fn check(&self, pid: u32, line: &str) {
        if !line.contains(&self.needle) {
            return;
        }
        let mut fired = self.fired.lock().unwrap_or_else(PoisonError::into_inner);
        if fired.is_none() {
            signal(pid, self.signal);
            *fired = Some((pid, line.to_owned()));
        }
    }
}

type Tripwires = Arc<Mutex<Vec<Arc<Tripwire>>>>;

/// How to start a process: [`Server::serve`] or [`Server::launch`], then settings, then
/// [`Launch::start`].
#[must_use]
pub struct Launch {
    bin: PathBuf,
    mode: Mode,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<TempDir>,
    tripwires: Vec<Arc<Tripwire>>,
    ready_within: Duration,
}

impl Launch {
    fn new(bin: &str, mode: Mode) -> Self {
        Self {
            bin: PathBuf::from(bin),
            mode,
            args: Vec::new(),
            env: vec![("LEGATO_LOG".to_owned(), "info".to_owned())],
            dir: None,
            tripwires: Vec::new(),
            ready_within: Duration::from_secs(30),
        }
    }

    /// Command-line arguments after the mode's own.
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable (set after the harness's own, so it wins).
    pub fn env(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.env.push((key.to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn envs(mut self, env: &[(&str, &str)]) -> Self {
        for (key, value) in env {
            self = self.env(key, value);
        }
        self
    }

    /// The process's folder (its `data/` for `serve`, the secrets folder of a function):
    /// one kept from an earlier process, to start on its data. A fresh one by default.
    pub fn dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Signals this process the moment it logs the tripwire's line.
    pub fn tripwire(mut self, tripwire: &Arc<Tripwire>) -> Self {
        self.tripwires.push(tripwire.clone());
        self
    }

    /// Starts it on a free port and waits (polling) until `/healthz` answers 200. A process
    /// that exits first (its port taken meanwhile) is started again on another port, three
    /// times.
    pub fn start(self) -> Server {
        let mut dir = match self.dir {
            Some(dir) => dir,
            None => tempfile::tempdir().unwrap(),
        };
        let tripwires: Tripwires = Arc::new(Mutex::new(self.tripwires));
        let mut last_log = String::new();
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut command = Command::new(&self.bin);
            command.env_clear();
            for key in PASSED_ON {
                if let Some(value) = std::env::var_os(key) {
                    command.env(key, value);
                }
            }
            let has_env = |key: &str| self.env.iter().any(|(k, _)| k == key);
            match self.mode.function() {
                None => {
                    command.arg("serve").arg("--listen").arg(addr.to_string());
                    let data_given = self
                        .args
                        .iter()
                        .any(|a| a == "--data" || a.starts_with("--data="));
                    if !data_given && !has_env("LEGATO_DATA") {
                        command.arg("--data").arg(dir.path().join("data"));
                    }
                }
                Some(name) => {
                    command
                        .args(["function", name])
                        .env("LEGATO_LISTEN", addr.to_string());
                    if !has_env("LEGATO_SECRETS_DIR") {
                        let secrets = dir.path().join("secrets");
                        std::fs::create_dir_all(&secrets).unwrap();
                        command.env("LEGATO_SECRETS_DIR", secrets);
                    }
                }
            }
            let mut child = command
                .args(&self.args)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
            let log: Log = Arc::default();
            let reader = read_log(&mut child, log.clone(), tripwires.clone());
            let mut server = Server {
                child,
                addr,
                dir,
                mode: self.mode,
                log,
                tripwires: tripwires.clone(),
                reader: Some(reader),
            };
            if server.wait_ready(self.ready_within) {
                return server;
            }
            let _ = server.wait_exit(Duration::from_secs(10));
            last_log = server.log();
            dir = server.take_dir();
        }
        panic!(
            "{} {:?} did not start:\n{last_log}",
            self.bin.display(),
            self.mode,
        );
    }
}

type Log = Arc<Mutex<Vec<String>>>;

fn join(log: &Log) -> String {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .join("\n")
}

/// A thread reading the process's stderr into `log`, checking each line against the
/// tripwires as it comes.
fn read_log(child: &mut Child, log: Log, tripwires: Tripwires) -> JoinHandle<()> {
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            for tripwire in tripwires
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                tripwire.check(pid, &line);
            }
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        }
    })
}

/// A running `legato serve` or `legato function …`; killed (and reaped) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its folder: `data/` for `serve` (unless given another), `secrets/` for a function.
    pub dir: TempDir,
    pub mode: Mode,
    log: Log,
    tripwires: Tripwires,
    reader: Option<JoinHandle<()>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} pid {} on {}",
            self.mode,
            self.child.id(),
            self.addr
        )
    }
}

impl Server {
    /// `legato serve` (`bin` is `env!("CARGO_BIN_EXE_legato")`).
    pub fn serve(bin: &str) -> Launch {
        Launch::new(bin, Mode::Serve)
    }

    /// `legato function crud|streaming|subsonic`, or `serve` for [`Mode::Serve`].
    pub fn launch(bin: &str, mode: Mode) -> Launch {
        Launch::new(bin, mode)
    }

    /// `legato serve` with `args`, started and ready.
    pub fn start(bin: &str, args: &[&str]) -> Self {
        Self::serve(bin).args(args).start()
    }

    /// As [`Server::start`], in `dir`, with extra environment variables.
    pub fn start_in(bin: &str, args: &[&str], dir: TempDir, env: &[(&str, &str)]) -> Self {
        Self::serve(bin).args(args).dir(dir).envs(env).start()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The URL of the crud function's `path`: under `/function/crud` for `serve`, at the
    /// root for the function itself.
    pub fn crud_url(&self, path: &str) -> String {
        match self.mode {
            Mode::Serve => self.url(&format!("/function/crud{path}")),
            _ => self.url(path),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Its folder, for the next process to start on (this one gets an empty one).
    pub fn take_dir(&mut self) -> TempDir {
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// Signals this process too when it logs the tripwire's line.
    pub fn arm(&self, tripwire: &Arc<Tripwire>) {
        self.tripwires
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tripwire.clone());
    }

    /// The log so far.
    pub fn log(&self) -> String {
        join(&self.log)
    }

    /// The lines of the log so far that contain every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .cloned()
            .collect()
    }

    /// Whether a line of the log so far contains every one of `needles`.
    pub fn logged(&self, needles: &[&str]) -> bool {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|line| needles.iter().all(|n| line.contains(n)))
    }

    /// Waits (polling) for a line with every one of `needles`, and returns it.
    pub fn wait_logged(&self, needles: &[&str], within: Duration) -> String {
        wait::until(within, &format!("{self:?} to log {needles:?}"), || {
            self.log_lines(needles).into_iter().next()
        })
    }

    /// The last `n` lines of the log, for a failure's message.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log[log.len().saturating_sub(n)..].join("\n")
    }

    /// Peak resident memory of the process so far, in kB (`VmHWM`).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        peak_rss_kb(self.child.id())
    }

    /// Samples its resident memory until [`MemorySampler::stop`].
    pub fn sample_memory(&self) -> MemorySampler {
        MemorySampler::start(self.child.id())
    }

    /// Sends `SIG<name>` (`TERM`, `KILL`, `STOP`, `CONT`, …).
    pub fn signal(&self, name: &str) {
        signal(self.child.id(), name);
    }

    /// Whether the process is stopped (by SIGSTOP): its state in `/proc` is `T`.
    pub fn is_stopped(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|stat| {
                // The state follows the command name, which is in parentheses.
                let after = stat.rsplit_once(')')?.1;
                after.split_whitespace().next().map(|s| s == "T")
            })
            .unwrap_or(false)
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits (polling) up to `within` for the process to exit, then for its log to be read
    /// to the end.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = &mut self.child;
        let exited = wait::holds_within(within, || child.try_wait().unwrap().is_some());
        assert!(
            exited,
            "{self:?} did not exit within {within:?}; its log ends:\n{}",
            self.log_tail(40)
        );
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            wait::until(Duration::from_secs(10), "the end of the log", || {
                reader.is_finished().then_some(())
            });
            let _ = reader.join();
        }
        status
    }

    /// SIGTERM, then waits (polling) up to `within` for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(within)
    }

    /// SIGTERM and wait, consuming the server.
    pub fn stop(mut self, within: Duration) -> ExitStatus {
        self.terminate(within)
    }

    /// SIGKILL, as a crash or an OOM kill would, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Connections to its port the process has open (established, or closed by the peer
    /// and not yet by the process): none once every request has been answered or dropped.
    pub fn open_connections(&self) -> usize {
        tcp_sockets()
            .iter()
            .filter(|s| {
                s.local == self.addr && matches!(s.state, ESTABLISHED | CLOSE_WAIT | SYN_RECV)
            })
            .count()
    }

    /// Whether the process has read every byte that came in on the connection from
    /// `client` (its receive queue is empty, and so is the client's send queue): it has
    /// accepted the connection and is reading what is sent on it.
    pub fn has_read_all_from(&self, client: SocketAddr) -> bool {
        let sockets = tcp_sockets();
        let ours = sockets
            .iter()
            .find(|s| s.local == client && s.remote == self.addr);
        let theirs = sockets
            .iter()
            .find(|s| s.local == self.addr && s.remote == client);
        matches!((ours, theirs), (Some(o), Some(t)) if o.tx_queue == 0 && t.rx_queue == 0)
    }

    /// Polls `/healthz` until it answers 200 (true) or the process exits (false).
    fn wait_ready(&mut self, within: Duration) -> bool {
        let (child, addr) = (&mut self.child, self.addr);
        wait::until(within, "the server to answer /healthz", || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(false);
            }
            (raw::get_status(addr, "/healthz", Duration::from_secs(2)) == 200).then_some(true)
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ESTABLISHED: u8 = 0x01;
const SYN_RECV: u8 = 0x03;
const CLOSE_WAIT: u8 = 0x08;

/// A line of `/proc/net/tcp`.
struct TcpSocket {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    tx_queue: u32,
    rx_queue: u32,
}

/// The IPv4 TCP sockets of this network namespace (the tests and the processes they start
/// share it).
fn tcp_sockets() -> Vec<TcpSocket> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let address = |text: &str| -> Option<SocketAddr> {
        let (ip, port) = text.split_once(':')?;
        // The address is the in-memory word, printed in hex: little-endian on x86.
        let ip = u32::from_str_radix(ip, 16).ok()?;
        let ip = std::net::Ipv4Addr::from(ip.to_le_bytes());
        Some(SocketAddr::from((ip, u16::from_str_radix(port, 16).ok()?)))
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (tx, rx) = fields.get(4)?.split_once(':')?;
            Some(TcpSocket {
                local: address(fields.get(1)?)?,
                remote: address(fields.get(2)?)?,
                state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
                tx_queue: u32::from_str_radix(tx, 16).ok()?,
                rx_queue: u32::from_str_radix(rx, 16).ok()?,
            })
        })
        .collect()
}

/// Samples a process's anonymous and file-backed resident memory (`RssAnon`, `RssFile`)
/// every 20 ms until stopped; the peaks, in MB. (`VmHWM`, [`Server::peak_rss_kb`], is their
/// sum's peak.)
pub struct MemorySampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, u64)>,
}

impl MemorySampler {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut anon, mut file) = (0, 0);
            while !stopping.load(Ordering::Relaxed) {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    let kb = |key: &str| -> u64 {
                        status
                            .lines()
                            .find(|l| l.starts_with(key))
                            .and_then(|l| l.split_whitespace().nth(1))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0)
                    };
                    anon = anon.max(kb("RssAnon:") >> 10);
                    file = file.max(kb("RssFile:") >> 10);
                }
                // Not a wait: the sampling period.
                std::thread::sleep(Duration::from_millis(20));
            }
            (anon, file)
        });
        Self { stop, thread }
    }

    /// The peaks of anonymous and of file-backed resident memory, in MB.
    pub fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Sends `SIG<name>` to `pid` with `kill(1)` (no libc call from tests).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Peak resident memory of process `pid`, in kB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `bin` as a command whose environment has none of the test's `LEGATO_*` settings, stdin
/// closed.
pub fn command(bin: &str) -> Command {
    let mut command = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LEGATO_") {
            command.env_remove(key);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `bin` with `args` (see [`command`]) to completion, returning (exit code, stdout,
/// stderr).
pub fn run(bin: &str, args: &[&str], cwd: Option<&Path>) -> (i32, String, String) {
    let mut command = command(bin);
    command.args(args);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let run = Run::of(&mut command);
    (run.code.unwrap_or(-1), run.stdout, run.stderr)
}

/// What a command run to completion gave back.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `command` to completion.
    pub fn of(command: &mut Command) -> Self {
        let output = command.output().unwrap();
        let text = |bytes: Vec<u8>, what: &str| {
            String::from_utf8(bytes).unwrap_or_else(|e| panic!("{what} is not UTF-8: {e}"))
        };
        Self {
            code: output.status.code(),
            stdout: text(output.stdout, "stdout"),
            stderr: text(output.stderr, "stderr"),
        }
    }

    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "{self:?}");
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lines().map(str::to_owned).collect()
    }
}

impl fmt::Debug for Run {
    /// The exit code and the last 40 lines of each output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn tail(text: &str) -> String {
            let lines: Vec<&str> = text.lines().collect();
            let skipped = lines.len().saturating_sub(40);
            let shown = lines[skipped..].join("\n");
            if skipped > 0 {
                format!("({skipped} lines before)\n{shown}\n")
            } else if shown.is_empty() {
                shown
            } else {
                format!("{shown}\n")
            }
        }
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// Runs a command to completion: `command(BIN).args(…).run()`.
pub trait CommandExt {
    fn run(&mut self) -> Run;
}

impl CommandExt for Command {
    fn run(&mut self) -> Run {
        Run::of(self)
    }
}
