//! Integration tests of legato-http, one binary: each module starts real servers on port 0
//! over real SQLite files (`util`), and ffmpeg (through `legato_test_support::ffmpeg`) is the
//! independent player that checks what they serve.

// Every module is `#[cfg(test)]` so that clippy's `allow-unwrap-in-tests` (clippy.toml)
// covers the helpers of this crate too, not only its `#[test]` functions.
#[cfg(test)]
mod util;

#[cfg(test)]
mod api;
#[cfg(test)]
mod fmp4;
#[cfg(test)]
mod ladder;
#[cfg(test)]
mod library;
#[cfg(test)]
mod opus;
#[cfg(test)]
mod originals;
#[cfg(test)]
mod player;
#[cfg(test)]
mod reprocess;
#[cfg(test)]
mod security;
#[cfg(test)]
mod streaming;
#[cfg(test)]
mod subsonic;
#[cfg(test)]
mod subsonic_quotas;
#[cfg(test)]
mod web_session;

/// With `autotests = false` a file added to `tests/` is compiled only once it is declared
/// above: this fails until it is, so no test is left out unnoticed.
#[test]
fn every_file_in_tests_is_a_module_of_this_binary() {
    legato_test_support::suite::assert_every_file_is_a_module(
        env!("CARGO_MANIFEST_DIR"),
        include_str!("tests.rs"),
    );
}
