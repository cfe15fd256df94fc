//! The search and sort keys every backend stores beside a track's name and author, so that
//! matching and ordering are the same on all of them.
//!
//! MongoDB offers collation (case- and accent-insensitive order) but FerretDB does not, and
//! neither uses its indexes the same way; SQLite's own folding (`NOCASE`, FTS5's `unicode61`)
//! differs from both. So the folding is ours: each backend stores [`fold`] of the name and the
//! author (sorted by plain binary comparison, which every backend does alike) and the
//! [`words`] of those keys (searched by word prefix).
//!
//! **Folding:** canonical decomposition (NFD), lowercase, the combining diacritical marks
//! U+0300–U+036F dropped (`Beyoncé` → `beyonce`, `ÉMILE` → `emile`), a few letters that have
//! no decomposition mapped to their base (`ø` → `o`, `ł` → `l`, `ß` → `ss`, …), and the two
//! lowercase forms of sigma made one. Other scripts keep their letters and marks; Hangul
//! syllables are kept decomposed into jamo (which keeps their order).
//!
//! **Words:** runs of letters, digits, marks and private-use characters in the folded text;
//! everything else (spaces, punctuation, symbols) separates words.
//!
//! **Matching:** a query matches a track when every word of the query is the beginning of a
//! word of the track's name or author (in any order). A query without words matches nothing.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The folded form of `text`, for ordering and as the source of its [`words`].
pub fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.nfd() {
        if ('\u{300}'..='\u{36f}').contains(&c) {
            continue;
        }
        for lower in c.to_lowercase() {
            match lower {
                // The combining dot of 'İ' lowercased, and any mark of that block.
                '\u{300}'..='\u{36f}' => {}
                'ς' => folded.push('σ'),
                'ſ' => folded.push('s'),
                'ß' => folded.push_str("ss"),
                'æ' => folded.push_str("ae"),
                'œ' => folded.push_str("oe"),
                'ø' => folded.push('o'),
                'ł' => folded.push('l'),
                'đ' | 'ð' => folded.push('d'),
                'ħ' => folded.push('h'),
                'ı' => folded.push('i'),
                'þ' => folded.push_str("th"),
                other => folded.push(other),
            }
        }
    }
    folded
}

/// Whether `c` belongs to a word (see the module documentation).
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || is_combining_mark(c)
        || matches!(c, '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{ffffd}' | '\u{100000}'..='\u{10fffd}')
}

/// The words of an already folded text, in order, repeats included.
pub fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
}

/// The distinct words of a track's name and author, for a backend that indexes words itself.
pub fn track_words(name_key: &str, author_key: &str) -> Vec<String> {
    let mut all: Vec<String> = words(name_key)
        .chain(words(author_key))
        .map(str::to_owned)
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The words of a search query (each to be matched as a word prefix), folded; empty when the
/// query has none (it then matches nothing).
pub fn query_words(query: &str) -> Vec<String> {
    words(&fold(query)).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_accents() {
        assert_eq!(fold("Beyoncé"), "beyonce");
        assert_eq!(fold("ÉMILE Zola"), "emile zola");
        assert_eq!(fold("Ærøskøbing Straße"), "aeroskobing strasse");
        assert_eq!(fold("İstanbul"), "istanbul");
        assert_eq!(fold("Łódź"), "lodz");
        assert_eq!(fold("ΟΔΥΣΣΕΑΣ"), fold("Οδυσσέας"));
        assert_eq!(fold("Чайковский"), "чаиковскии");
        assert_eq!(fold("坂本龍一"), "坂本龍一");
    }

    #[test]
    fn splits_words_on_everything_but_letters_digits_and_marks() {
        let key = fold("100% Pure (Live) — a-ha/Björk");
        assert_eq!(
            words(&key).collect::<Vec<_>>(),
            ["100", "pure", "live", "a", "ha", "bjork"]
        );
        // Devanagari vowel signs and virama are marks: the word stays whole.
        assert_eq!(words(&fold("नमस्ते दुनिया")).count(), 2);
        assert!(query_words("  (%) ").is_empty());
        assert_eq!(
            track_words(&fold("Song song"), &fold("SONG x")),
            ["song", "x"]
        );
    }
}
