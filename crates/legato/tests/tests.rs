//! The `legato` binary through real processes: the CLI, the functions, `legato serve`'s
//! hardening, imports, reprocessing, durable jobs, over SQLite, FerretDB and SeaweedFS.
//! One test binary (one link); each former test file is a module.
//!
//! The MongoDB and object-store tests read `LEGATO_TEST_MONGODB_URI`, `LEGATO_TEST_BLOBS`
//! and `LEGATO_TEST_BLOBS_KEYS`, which `make test` sets (they fail without them).
//!
//! Every module is `#[cfg(test)]` so that clippy's `allow-unwrap-in-tests` (clippy.toml)
//! covers its helper functions too, not only its `#[test]` functions.

/// The binary under test.
#[cfg(test)]
const BIN: &str = env!("CARGO_BIN_EXE_legato");

#[cfg(test)]
mod cli;
#[cfg(test)]
mod durable_jobs;
#[cfg(test)]
mod function;
#[cfg(test)]
mod hardening;
#[cfg(test)]
mod import;
#[cfg(test)]
mod mongo_function;
#[cfg(test)]
mod object_store;
#[cfg(test)]
mod originals_on_mongo;
#[cfg(test)]
mod reprocess;

/// With `autotests = false` a file added to `tests/` is compiled only once it is declared
/// above: this fails until it is, so no test is left out unnoticed.
#[test]
fn every_file_in_tests_is_a_module_of_this_binary() {
    legato_test_support::suite::assert_every_file_is_a_module(
        env!("CARGO_MANIFEST_DIR"),
        include_str!("tests.rs"),
    );
}
