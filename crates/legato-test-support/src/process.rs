//! The `legato` binary as a real process: started on a free port over its own data folder,
//! ready once `/healthz` answers, stopped with SIGTERM or killed with SIGKILL.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A running `legato serve`.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub log: PathBuf,
}

impl Server {
    /// Starts `bin serve --listen <free port> --data <temp dir>` with `args`, and waits
    /// (polling, up to 30 s) until `/healthz` answers 200.
    pub fn start(bin: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(bin, args, dir, &[])
    }

    /// As [`Server::start`], in `dir`, with extra environment variables. The `LEGATO_*`
    /// variables of the test's own environment are not passed on. A server that fails to
    /// start (its port taken meanwhile) is started again on another port, three times.
    pub fn start_in(bin: &str, args: &[&str], dir: TempDir, env: &[(&str, &str)]) -> Self {
        let log = dir.path().join("server.log");
        let data = dir.path().join("data");
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut command = Command::new(bin);
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("LEGATO_") {
                    command.env_remove(key);
                }
            }
            command.arg("serve").arg("--listen").arg(addr.to_string());
            if !args.contains(&"--data") {
                command.arg("--data").arg(&data);
            }
            let mut child = command
                .args(args)
                .envs(env.iter().copied())
                .env("LEGATO_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            if wait_ready(&mut child, addr, Duration::from_secs(30)) {
                return Self {
                    child,
                    addr,
                    dir,
                    log,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "legato serve did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory of the process so far, in kB (`VmHWM`).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        peak_rss_kb(self.child.id())
    }

    /// SIGTERM, then waits (polling) up to `within` for the process to exit.
    pub fn stop(mut self, within: Duration) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        let child = &mut self.child;
        wait::until(within, "the server to exit after SIGTERM", || {
            child.try_wait().unwrap()
        })
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `/healthz` until it answers 200 (true) or the process exits (false).
fn wait_ready(child: &mut Child, addr: SocketAddr, within: Duration) -> bool {
    wait::until(within, "the server to answer /healthz", || {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(false);
        }
        (raw::get_status(addr, "/healthz", Duration::from_secs(2)) == 200).then_some(true)
    })
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

/// Runs `bin` with `args` to completion, returning (exit code, stdout, stderr).
pub fn run(bin: &str, args: &[&str], cwd: Option<&Path>) -> (i32, String, String) {
    let mut command = Command::new(bin);
    command.args(args).stdin(Stdio::null());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A fresh database on the MongoDB-protocol server named by `LEGATO_TEST_MONGODB_URI`
/// (`make test` starts FerretDB and sets it), as a URI with the database in its path:
/// `<prefix>_<pid>_<nanos>`. Panics with how to start one when the variable is unset.
pub fn mongo_test_uri(prefix: &str) -> String {
    let uri = std::env::var("LEGATO_TEST_MONGODB_URI").unwrap_or_else(|_| {
        panic!(
            "LEGATO_TEST_MONGODB_URI is not set: start FerretDB with scripts/ferretdb.sh and \
             export the URI it prints (make test does both)"
        )
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let database = format!("{prefix}_{}_{nanos}", std::process::id());
    let base = uri.trim_end_matches('/');
    // The database goes in the path, before any query.
    match base.split_once('?') {
        Some((hosts, query)) => format!("{}/{database}?{query}", hosts.trim_end_matches('/')),
        None => format!("{base}/{database}"),
    }
}
