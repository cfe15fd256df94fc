//! Title, artist, album, year, track number and cover art, read with lofty from an in-memory
//! file: ID3v1/v2, Vorbis comments (FLAC, Ogg Vorbis and Opus), MP4 atoms, APE and RIFF INFO,
//! whichever the format carries. Matroska/WebM tags are not read (lofty has no reader for them).
//!
//! Tag text is untrusted: control and bidirectional-override characters are removed,
//! whitespace is collapsed and each field is cut to [`MAX_TAG_CHARS`] characters. Only a
//! JPEG or PNG cover (recognised by its bytes, not its declared MIME type) of at most
//! [`MAX_COVER_BYTES`] is kept.

use std::io::{Cursor, Read, Seek, SeekFrom};

use lofty::config::ParseOptions;
use lofty::file::{FileType, TaggedFileExt};
use lofty::picture::{Picture, PictureType};
use lofty::probe::Probe;
use lofty::tag::{Accessor, ItemKey, Tag};

use crate::detect::sniff;
use crate::{Cover, MAX_COVER_BYTES, MAX_TAG_CHARS, SourceFormat, Tags};

/// See [`crate::read_tags`].
pub(crate) fn read_tags(data: &[u8]) -> Tags {
    read_tags_from(&mut Cursor::new(data))
}

/// See [`crate::read_tags_from`].
pub(crate) fn read_tags_from<R: Read + Seek>(reader: &mut R) -> Tags {
    let format = match crate::detect::head(reader) {
        Ok(Ok(head)) => match sniff(&head) {
            Ok(sniffed) => sniffed.format,
            Err(_) => return Tags::default(),
        },
        _ => return Tags::default(),
    };
    let file_type = match format {
        SourceFormat::Mp3 => FileType::Mpeg,
        SourceFormat::Wav => FileType::Wav,
        SourceFormat::Flac => FileType::Flac,
        SourceFormat::OggVorbis => FileType::Vorbis,
        SourceFormat::Mp4Aac => FileType::Mp4,
        SourceFormat::Adts => FileType::Aac,
        SourceFormat::Aiff => FileType::Aiff,
        SourceFormat::OggOpus => FileType::Opus,
        // lofty reads no Matroska tags.
        SourceFormat::Matroska => return Tags::default(),
    };
    let mut read = |cover_art: bool| {
        reader.seek(SeekFrom::Start(0))?;
        Probe::new(&mut *reader)
            .options(
                ParseOptions::new()
                    .read_properties(false)
                    .read_cover_art(cover_art),
            )
            .set_file_type(file_type)
            .read()
    };
    // A cover too large for lofty's allocation limit fails the whole read: try again without
    // pictures, so the text still comes through.
    let Ok(file) = read(true).or_else(|_| read(false)) else {
        return Tags::default();
    };
    // The format's main tag first, then the others (e.g. an ID3v1 behind an ID3v2) for what
    // it lacks.
    let mut tags: Vec<&Tag> = file.primary_tag().into_iter().collect();
    tags.extend(
        file.tags()
            .iter()
            .filter(|tag| Some(tag.tag_type()) != file.primary_tag().map(Tag::tag_type)),
    );
    let first = |get: &dyn Fn(&Tag) -> Option<String>| tags.iter().find_map(|tag| get(tag));
    Tags {
        title: first(&|tag| clean(&tag.title()?)),
        artist: first(&|tag| clean(&tag.artist()?)),
        album: first(&|tag| clean(&tag.album()?)),
        year: tags.iter().find_map(|tag| year(tag)),
        track: tags
            .iter()
            .find_map(|tag| tag.track())
            .filter(|&track| track > 0),
        disc: tags
            .iter()
            .find_map(|tag| tag.disk())
            .filter(|&disc| disc > 0),
        album_artist: first(&|tag| clean(tag.get_string(ItemKey::AlbumArtist)?)),
        genre: first(&|tag| genre(&tag.genre()?)),
        cover: cover(&tags),
    }
}

/// Untrusted tag text made safe to show: no control or bidirectional-override characters,
/// whitespace runs collapsed to one space, trimmed, at most [`MAX_TAG_CHARS`] characters.
/// `None` if nothing is left.
pub(crate) fn clean(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len().min(MAX_TAG_CHARS * 4));
    let mut chars = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if is_invisible_format(c) {
            continue;
        }
        if space {
            if chars + 1 >= MAX_TAG_CHARS {
                break;
            }
            out.push(' ');
            chars += 1;
            space = false;
        }
        if chars >= MAX_TAG_CHARS {
            break;
        }
        out.push(c);
        chars += 1;
    }
    (!out.is_empty()).then_some(out)
}

/// Characters that change how text around them is shown without being seen themselves:
/// bidirectional embeddings, overrides and isolates, zero-width joiners and spaces, the BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        | '\u{061C}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The first of several genres ("Rock; Pop", "Rock/Pop" stay whole, ID3's "\0"-separated
/// list is cut); a bare ID3v1 number "(17)" or "17" as lofty left it is dropped.
fn genre(text: &str) -> Option<String> {
    let first = text.split('\0').next().unwrap_or_default();
    let bare_number = first
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .chars()
        .all(|c| c.is_ascii_digit());
    if bare_number {
        return None;
    }
    clean(first)
}

fn year(tag: &Tag) -> Option<i32> {
    let from_date = tag.date().map(|date| i32::from(date.year));
    let from_text = || {
        [
            ItemKey::Year,
            ItemKey::RecordingDate,
            ItemKey::OriginalReleaseDate,
        ]
        .into_iter()
        .filter_map(|key| tag.get_string(key))
        .find_map(leading_year)
    };
    from_date
        .filter(|year| (1..=9999).contains(year))
        .or_else(from_text)
}

/// The year at the start of a date such as "2001", "2001-05-17" or "2001/05".
fn leading_year(text: &str) -> Option<i32> {
    let text = text.trim();
    let digits = text.get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || text.as_bytes().get(4).is_some_and(u8::is_ascii_digit)
    {
        return None;
    }
    digits.parse().ok().filter(|year| (1..=9999).contains(year))
}

/// The front cover if there is one, else the first picture; JPEG or PNG only, size-capped.
fn cover(tags: &[&Tag]) -> Option<Cover> {
    let usable = |picture: &&Picture| {
        picture.data().len() <= MAX_COVER_BYTES && image_mime(picture.data()).is_some()
    };
    let pictures = || tags.iter().flat_map(|tag| tag.pictures());
    let chosen = pictures()
        .filter(usable)
        .find(|picture| picture.pic_type() == PictureType::CoverFront)
        .or_else(|| pictures().find(usable))?;
    Some(Cover {
        mime: image_mime(chosen.data())?,
        bytes: chosen.data().to_vec(),
    })
}

/// The MIME type of a JPEG or PNG image, from its first bytes.
pub(crate) fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cleaned() {
        assert_eq!(clean("  Hello\u{0}\n\tWorld  "), Some("Hello World".into()));
        assert_eq!(clean("evil\u{202E}txt.exe"), Some("eviltxt.exe".into()));
        assert_eq!(clean("\u{1}\u{2}  "), None);
        assert_eq!(clean("Björk — Jóga"), Some("Björk — Jóga".into()));
        let long = "é".repeat(1000);
        assert_eq!(clean(&long).map(|s| s.chars().count()), Some(MAX_TAG_CHARS));
        let spaced = "a ".repeat(1000);
        let cleaned = clean(&spaced).unwrap_or_default();
        assert!(cleaned.chars().count() <= MAX_TAG_CHARS);
        assert!(!cleaned.ends_with(' '));
    }

    #[test]
    fn years_from_dates() {
        assert_eq!(leading_year("2001"), Some(2001));
        assert_eq!(leading_year("1999-12-31"), Some(1999));
        assert_eq!(leading_year("20011"), None);
        assert_eq!(leading_year("0000"), None);
        assert_eq!(leading_year("abcd"), None);
    }

    #[test]
    fn genres_keep_the_first_name() {
        assert_eq!(genre("Rock"), Some("Rock".into()));
        assert_eq!(genre("Jazz\0Blues"), Some("Jazz".into()));
        assert_eq!(genre("Rock/Pop"), Some("Rock/Pop".into()));
        assert_eq!(genre("(17)"), None);
        assert_eq!(genre("17"), None);
        assert_eq!(genre("  "), None);
    }

    #[test]
    fn covers_are_recognised_by_their_bytes() {
        assert_eq!(image_mime(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(image_mime(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_mime(b"GIF89a"), None);
    }

    #[test]
    fn garbage_has_no_tags() {
        assert_eq!(read_tags(b""), Tags::default());
        assert_eq!(read_tags(b"hello"), Tags::default());
    }
}
