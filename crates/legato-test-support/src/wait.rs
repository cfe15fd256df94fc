//! Polling waits: check a condition until it holds or a deadline passes.

use std::time::{Duration, Instant};

/// Polls `check` every `every` until it returns `Some`, failing the test after `within`.
pub fn until<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    let every = Duration::from_millis(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// True when `check` holds within `within`, polling; false (no panic) otherwise.
pub fn holds_within(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
