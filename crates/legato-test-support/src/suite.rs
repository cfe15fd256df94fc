//! The shape every crate's integration tests share: one binary, `tests/tests.rs`, with the
//! other files of `tests/` as its modules (`autotests = false` in the crate's manifest).

use std::path::Path;

/// Fails when a `.rs` file directly in `<manifest_dir>/tests` is not declared as a module
/// (`mod name;`) of `root`, the text of `tests/tests.rs`. With `autotests = false` such a
/// file is never compiled, so its tests would be skipped without a word.
pub fn assert_every_file_is_a_module(manifest_dir: &str, root: &str) {
    let dir = Path::new(manifest_dir).join("tests");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                name == "tests" || root.contains(&format!("\nmod {name};\n")),
                "tests/{name}.rs is not a module of tests/tests.rs: declare it there \
                 (`#[cfg(test)] mod {name};`)"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no test file found in {}", dir.display());
}
