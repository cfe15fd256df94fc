//! Integration tests of the SQLite store, one binary: the backend conformance story.

// Every module is `#[cfg(test)]` so that clippy's `allow-unwrap-in-tests` (clippy.toml)
// covers the helpers of this crate too, not only its `#[test]` functions.
#[cfg(test)]
mod conformance;
#[cfg(test)]
mod space;

/// With `autotests = false` a file added to `tests/` is compiled only once it is declared
/// above: this fails until it is, so no test is left out unnoticed.
#[test]
fn every_file_in_tests_is_a_module_of_this_binary() {
    legato_test_support::suite::assert_every_file_is_a_module(
        env!("CARGO_MANIFEST_DIR"),
        include_str!("tests.rs"),
    );
}
