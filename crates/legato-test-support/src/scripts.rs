//! What the server harnesses ([`crate::ferretdb`], [`crate::seaweedfs`]) share: the project's
//! scripts that install, start and stop those servers, and names no other test uses.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

fn path(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script)
}

/// Runs `scripts/<script>` with `args`, failing the test with its message when it fails;
/// the last line it prints.
pub(crate) fn run(script: &str, args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(path(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scripts/{script} {args:?} failed (make test installs what it needs): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `scripts/<script> stop <dir>`, ignoring failure: for `Drop`, a failing test included.
pub(crate) fn stop_quietly(script: &str, dir: &std::path::Path) {
    let _ = Command::new("bash")
        .arg(path(script))
        .args(["stop", &dir.display().to_string()])
        .output();
}

/// A name no other test (or earlier run) uses: `<prefix><sep><pid><sep><n><sep><nanos>`.
pub(crate) fn unique(prefix: &str, sep: char) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{sep}{}{sep}{}{sep}{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
