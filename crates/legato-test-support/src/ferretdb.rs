//! FerretDB, a MongoDB-protocol server on SQLite, as the tests use it: the shared one that
//! `make test` starts and names in `LEGATO_TEST_MONGODB_URI` (a fresh database in it per
//! test), and instances of a test's own, stopped and started again to play an outage.
//! Both through `scripts/ferretdb.sh`, which installs FerretDB into `$LEGATO_TOOLS`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// The variable naming the shared server.
pub const URI_VAR: &str = "LEGATO_TEST_MONGODB_URI";

/// The shared server's URI; fails (never skips) with how to start one when it is unset.
pub fn shared_uri() -> String {
    match std::env::var(URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => panic!(
            "{URI_VAR} is not set: these tests need a MongoDB-protocol server. Start one with \
             `scripts/ferretdb.sh start 27017 /tmp/legato-ferretdb` (it prints the URI) and \
             export `{URI_VAR}=mongodb://127.0.0.1:27017/` (make test does both)"
        ),
    }
}

/// A database name no other test (or earlier run) uses: `<prefix>_<pid>_<n>_<nanos>`.
pub fn unique_database(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `uri` with `database` in its path, before any query.
pub fn with_database(uri: &str, database: &str) -> String {
    let base = uri.trim_end_matches('/');
    match base.split_once('?') {
        Some((hosts, query)) => format!("{}/{database}?{query}", hosts.trim_end_matches('/')),
        None => format!("{base}/{database}"),
    }
}

/// A fresh database on the shared server, as a URI with the database in its path (what
/// `--store` and `LEGATO_STORE` take).
pub fn fresh_database_uri(prefix: &str) -> String {
    with_database(&shared_uri(), &unique_database(prefix))
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ferretdb.sh")
}

/// Runs `scripts/ferretdb.sh` with `args`; the last line it prints.
fn run_script(args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scripts/ferretdb.sh {args:?} failed (make test installs FerretDB): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// A FerretDB of the test's own, on its own port and data folder; stopped when dropped,
/// a failing test included.
pub struct FerretDb {
    port: u16,
    dir: TempDir,
    uri: String,
}

impl FerretDb {
    /// Starts one on a free port and waits until it accepts connections.
    pub fn start_new() -> Self {
        let port: u16 = run_script(&["free-port"]).parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let uri = run_script(&[
            "start",
            &port.to_string(),
            &dir.path().display().to_string(),
        ]);
        Self { port, dir, uri }
    }

    /// `mongodb://127.0.0.1:<port>/`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Its URI with `database` in the path.
    pub fn database_uri(&self, database: &str) -> String {
        with_database(&self.uri, database)
    }

    /// Stops it (SIGTERM, waiting until it is gone).
    pub fn stop(&self) {
        run_script(&["stop", &self.dir.path().display().to_string()]);
    }

    /// Starts it again on the same port and data folder, and waits until it accepts
    /// connections.
    pub fn start(&self) {
        let uri = run_script(&[
            "start",
            &self.port.to_string(),
            &self.dir.path().display().to_string(),
        ]);
        assert_eq!(uri, self.uri);
    }
}

impl Drop for FerretDb {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.dir.path().display().to_string()])
            .output();
    }
}
