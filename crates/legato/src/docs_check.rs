//! The documents a newcomer reads first, checked against the code they describe, so they
//! cannot drift: the README's settings table against clap's definition of `legato serve`,
//! and ARCHITECTURE.md's codemap against the crates and their `unsafe` code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use legato_test_support::docs::{quoted, table_rows};

const README: &str = include_str!("../../../README.md");
const ARCHITECTURE: &str = include_str!("../../../ARCHITECTURE.md");

/// One row of the README's table of `legato serve` settings.
#[derive(Debug)]
struct Row {
    flags: Vec<String>,
    envs: Vec<String>,
    default: String,
}

fn settings_table() -> Vec<Row> {
    table_rows(README, "## Configuration of `legato serve`", "| flag |")
        .into_iter()
        .map(|cells| {
            assert!(
                cells.len() >= 4,
                "a settings row with fewer than 4 cells: {cells:?}"
            );
            Row {
                flags: quoted(&cells[0]),
                envs: quoted(&cells[1]),
                default: cells[2].clone(),
            }
        })
        .collect()
}

#[test]
fn the_readme_settings_table_is_the_flags_of_legato_serve() {
    let command = crate::cli::Cli::command();
    let serve = command
        .find_subcommand("serve")
        .expect("a serve subcommand");
    let rows = settings_table();
    assert!(rows.len() > 20, "the table was not read: {rows:?}");
    let documented: BTreeSet<&str> = rows
        .iter()
        .flat_map(|row| row.flags.iter().map(String::as_str))
        .collect();
    let mut defined = BTreeSet::new();
    let mut wrong = Vec::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") || arg.is_hide_set() {
            continue;
        }
        let flag = format!("--{long}");
        defined.insert(flag.clone());
        let Some(row) = rows.iter().find(|row| row.flags.contains(&flag)) else {
            continue; // reported below, with every other missing flag
        };
        let env = arg.get_env().map(|env| env.to_string_lossy().into_owned());
        match env {
            Some(env) if !row.envs.contains(&env) => {
                wrong.push(format!("{flag}: the row names {:?}, clap {env}", row.envs));
            }
            None => wrong.push(format!("{flag} has no environment variable")),
            Some(_) => {}
        }
        for default in arg.get_default_values() {
            let default = default.to_string_lossy();
            if !row.default.contains(&format!("`{default}`")) {
                wrong.push(format!(
                    "{flag}: the default is `{default}`, the row says {}",
                    row.default
                ));
            }
        }
    }
    let defined_names: BTreeSet<&str> = defined.iter().map(String::as_str).collect();
    let undocumented: Vec<_> = defined_names.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&defined_names).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty() && wrong.is_empty(),
        "README's settings table and `legato serve` disagree:\n  flags without a row: \
         {undocumented:?}\n  rows for no flag: {unknown:?}\n  {}",
        wrong.join("\n  ")
    );
}

/// The crate folders the codemap block of ARCHITECTURE.md names.
fn codemap_crates() -> BTreeSet<String> {
    ARCHITECTURE
        .lines()
        .filter_map(|line| line.strip_prefix("crates/"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[test]
fn the_codemap_names_every_crate_and_only_those() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(codemap_crates(), on_disk, "ARCHITECTURE.md's codemap");
    for name in &on_disk {
        assert!(
            ARCHITECTURE.contains(&format!("## {name}")),
            "ARCHITECTURE.md has no section `## {name}`"
        );
    }
}

/// Every source file of the workspace's crates, as (path from the workspace, text).
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let relative = path
                .strip_prefix(workspace())
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((relative, text));
        }
    }
}

#[test]
fn architecture_names_every_file_with_unsafe_code() {
    let mut files = Vec::new();
    sources(&workspace().join("crates"), &mut files);
    let with_unsafe: Vec<String> = files
        .into_iter()
        .filter(|(_, text)| text.contains("unsafe {"))
        .map(|(path, _)| path)
        .collect();
    assert!(!with_unsafe.is_empty(), "no source was read");
    let unnamed: Vec<&String> = with_unsafe
        .iter()
        .filter(|path| !ARCHITECTURE.contains(&format!("`{path}`")))
        .collect();
    assert!(
        unnamed.is_empty(),
        "files with `unsafe` blocks that ARCHITECTURE.md does not name (in backticks, by \
         their path from the workspace): {unnamed:?}"
    );
}
