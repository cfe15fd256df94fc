//! Reading the project's Markdown documents in the tests that check them against the code.

/// The rows of the first table after `section` (a heading line's text) in `doc` whose header
/// row starts with `header`: each row's cells, trimmed, without the outer `|`s. A cell may
/// hold `|` only in the last column.
pub fn table_rows(doc: &str, section: &str, header: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(section)
        .unwrap_or_else(|| panic!("no section {section:?} in the document"));
    let rows: Vec<Vec<String>> = doc[start..]
        .lines()
        .skip_while(|line| !line.starts_with(header))
        .skip(2) // the header and its --- line
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
            inner
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect();
    assert!(
        !rows.is_empty(),
        "no table under {section:?} starting {header:?}"
    );
    rows
}

/// The backticked words of a table cell: `` `a`, `b` `` gives `a` and `b`.
pub fn quoted(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}
