//! Folders a test keeps for the life of its process (a store opened on it must outlive the
//! function that made it). They would pile up in the temporary folder run after run, which
//! nothing empties on a machine that is not rebooted: each process sweeps away the folders
//! of its kind that earlier runs left there (older than an hour, so that a run going on
//! beside it keeps its own).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A new folder under the temporary folder, named `<prefix>…`, kept after the process ends;
/// the first call of a process removes the `<prefix>…` folders an hour old or more.
pub fn kept_dir(prefix: &'static str) -> PathBuf {
    static SWEPT: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    if SWEPT.lock().unwrap().get_or_insert_default().insert(prefix) {
        sweep(prefix, Duration::from_secs(3600));
    }
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap()
        .keep()
}

fn sweep(prefix: &str, older_than: Duration) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| now.duration_since(modified).unwrap_or_default() >= older_than);
        if old && entry.file_name().to_string_lossy().starts_with(prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_folders_of_the_prefix_are_swept() {
        let mine = kept_dir("legato-scratch-test-");
        let other = tempfile::Builder::new()
            .prefix("legato-scratch-other-")
            .tempdir()
            .unwrap();
        sweep("legato-scratch-test-", Duration::from_secs(3600));
        assert!(mine.exists(), "a new folder stays");
        sweep("legato-scratch-test-", Duration::ZERO);
        assert!(!mine.exists(), "an old one of the prefix goes");
        assert!(other.path().exists(), "other prefixes stay");
    }
}
