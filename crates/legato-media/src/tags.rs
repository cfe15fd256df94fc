//! Metadata tags that wrap MP3 audio: ID3v2 (at the start, or at the end with a footer),
//! APEv2 (at the start or the end, with or without a header), Lyrics3 v1/v2 and ID3v1 (with
//! the optional 227-byte "TAG+" extension) at the end.
//!
//! Every function here looks at a fixed place and returns the length of the tag found there.
//! A tag whose declared size runs past the data is not reported: the scanner then resyncs
//! over its bytes instead of trusting a size field written by someone else.

use std::ops::Range;

/// The kinds of tag this module recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    Id3v2,
    Id3v1,
    Ape,
    Lyrics3,
}

const ID3V2_HEADER_LEN: usize = 10;
const ID3V1_LEN: usize = 128;
const ID3V1_EXTENDED_LEN: usize = 227;
const APE_HEADER_LEN: usize = 32;
const APE_HAS_HEADER: u32 = 1 << 31;
const LYRICS3_BEGIN: &[u8] = b"LYRICSBEGIN";
const LYRICS3V1_END: &[u8] = b"LYRICSEND";
const LYRICS3V2_END: &[u8] = b"LYRICS200";
/// Lyrics3 v1 caps the lyrics at 5100 bytes between its two markers.
const LYRICS3V1_MAX_LEN: usize = 5100 + 11 + 9;

/// Decodes a 28-bit "syncsafe" integer (7 bits per byte, high bit always clear).
fn syncsafe(bytes: [u8; 4]) -> Option<usize> {
    if bytes.iter().any(|&b| b & 0x80 != 0) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0usize, |size, &b| (size << 7) | usize::from(b)),
    )
}

/// Parses the ten bytes of an ID3v2 header or footer with the given magic; returns
/// (major version, flags, body size).
fn id3v2_header(bytes: &[u8], magic: &[u8; 3]) -> Option<(u8, u8, usize)> {
    let header: [u8; ID3V2_HEADER_LEN] = bytes.get(..ID3V2_HEADER_LEN)?.try_into().ok()?;
    let [m0, m1, m2, major, revision, flags, s0, s1, s2, s3] = header;
    if [m0, m1, m2] != *magic || !(2..=4).contains(&major) || revision == 0xFF {
        return None;
    }
    Some((major, flags, syncsafe([s0, s1, s2, s3])?))
}

/// Length of the ID3v2 tag at the start of `data` (header, body and optional footer).
pub fn id3v2_len(data: &[u8]) -> Option<usize> {
    let len = id3v2_declared_len(data)?;
    (len <= data.len()).then_some(len)
}

/// Length an ID3v2 tag declares in its ten-byte header at the start of `header` (header,
/// body and optional footer), whether or not that much follows: for reading a file's tags
/// without holding the file.
pub fn id3v2_declared_len(header: &[u8]) -> Option<usize> {
    let (major, flags, size) = id3v2_header(header, b"ID3")?;
    let footer = if major == 4 && flags & 0x10 != 0 {
        ID3V2_HEADER_LEN
    } else {
        0
    };
    Some(ID3V2_HEADER_LEN + size + footer)
}

/// Length of an ID3v2.4 tag appended at the end of `data`, found by its "3DI" footer.
pub fn id3v2_len_at_end(data: &[u8]) -> Option<usize> {
    let footer_start = data.len().checked_sub(ID3V2_HEADER_LEN)?;
    let (_, _, size) = id3v2_header(data.get(footer_start..)?, b"3DI")?;
    let len = size + 2 * ID3V2_HEADER_LEN;
    let start = data.len().checked_sub(len)?;
    id3v2_header(data.get(start..)?, b"ID3")?;
    Some(len)
}

/// Length of the ID3v1 tag at the end of `data`, with its "TAG+" extension if present.
pub fn id3v1_len(data: &[u8]) -> Option<usize> {
    let start = data.len().checked_sub(ID3V1_LEN)?;
    if !data.get(start..)?.starts_with(b"TAG") {
        return None;
    }
    let extended = start
        .checked_sub(ID3V1_EXTENDED_LEN)
        .and_then(|ext_start| data.get(ext_start..))
        .is_some_and(|ext| ext.starts_with(b"TAG+"));
    Some(if extended {
        ID3V1_LEN + ID3V1_EXTENDED_LEN
    } else {
        ID3V1_LEN
    })
}

/// Reads an APE tag header or footer: (tag size excluding the header, flags).
fn ape_header(bytes: &[u8]) -> Option<(usize, u32)> {
    let block: [u8; APE_HEADER_LEN] = bytes.get(..APE_HEADER_LEN)?.try_into().ok()?;
    if !block.starts_with(b"APETAGEX") {
        return None;
    }
    let le32 = |at: usize| -> Option<u32> {
        let field: [u8; 4] = block.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(field))
    };
    let size = usize::try_from(le32(12)?).ok()?;
    let flags = le32(20)?;
    (size >= APE_HEADER_LEN).then_some((size, flags))
}

/// Length of the APEv1/v2 tag at the end of `data`, header included when it has one.
pub fn ape_len_at_end(data: &[u8]) -> Option<usize> {
    let footer_start = data.len().checked_sub(APE_HEADER_LEN)?;
    let (size, flags) = ape_header(data.get(footer_start..)?)?;
    let header = if flags & APE_HAS_HEADER != 0 {
        APE_HEADER_LEN
    } else {
        0
    };
    let len = size.checked_add(header)?;
    (len <= data.len()).then_some(len)
}

/// Length of an APEv2 tag at the start of `data` (header, items and footer).
pub fn ape_len_at_start(data: &[u8]) -> Option<usize> {
    let (size, _) = ape_header(data)?;
    let len = size.checked_add(APE_HEADER_LEN)?;
    (len <= data.len()).then_some(len)
}

/// Length of the Lyrics3 v2 or v1 tag at the end of `data` (which must already have had
/// its ID3v1 tag removed: Lyrics3 sits just before it).
pub fn lyrics3_len(data: &[u8]) -> Option<usize> {
    if data.ends_with(LYRICS3V2_END) {
        // Six ASCII digits give the size from "LYRICSBEGIN" up to the digits themselves.
        let digits_start = data.len().checked_sub(LYRICS3V2_END.len() + 6)?;
        let digits = data.get(digits_start..digits_start + 6)?;
        let size = std::str::from_utf8(digits).ok()?.parse::<usize>().ok()?;
        let start = digits_start.checked_sub(size)?;
        return data
            .get(start..)?
            .starts_with(LYRICS3_BEGIN)
            .then_some(data.len() - start);
    }
    if data.ends_with(LYRICS3V1_END) {
        let window_start = data.len().saturating_sub(LYRICS3V1_MAX_LEN);
        let window = data.get(window_start..)?;
        let begin = window
            .windows(LYRICS3_BEGIN.len())
            .rposition(|w| w == LYRICS3_BEGIN)?;
        return Some(window.len() - begin);
    }
    None
}

/// The tag at the start of `data`, if any, and its length.
pub fn leading_tag(data: &[u8]) -> Option<(TagKind, usize)> {
    id3v2_len(data)
        .map(|len| (TagKind::Id3v2, len))
        .or_else(|| ape_len_at_start(data).map(|len| (TagKind::Ape, len)))
}

/// The tag at the end of `data`, if any, and its length.
pub fn trailing_tag(data: &[u8]) -> Option<(TagKind, usize)> {
    id3v1_len(data)
        .map(|len| (TagKind::Id3v1, len))
        .or_else(|| ape_len_at_end(data).map(|len| (TagKind::Ape, len)))
        .or_else(|| lyrics3_len(data).map(|len| (TagKind::Lyrics3, len)))
        .or_else(|| id3v2_len_at_end(data).map(|len| (TagKind::Id3v2, len)))
}

/// The byte range of `data` left once every leading and trailing tag is removed (several
/// of each may be stacked, e.g. `ID3v2 ID3v2 audio APE Lyrics3 ID3v1`).
pub fn audio_range(data: &[u8]) -> Range<usize> {
    let mut start = 0;
    while let Some((_, len)) = data.get(start..).and_then(leading_tag) {
        start += len;
    }
    let mut end = data.len();
    while let Some((_, len)) = data.get(start..end).and_then(trailing_tag) {
        end -= len;
    }
    start..end
}

/// As [`audio_range`], for `len` bytes that `read` gives a range of at most `probe` bytes at
/// a time: the leading tags are skipped by the sizes their headers declare (a 50 MB cover
/// is never read), the trailing ones found in the last `probe` bytes (a longer one, such as
/// an APE tag with a large picture, is left to the scanner, which skips it as junk).
///
/// # Errors
/// Those of `read`.
pub fn audio_range_read<E>(
    len: usize,
    probe: usize,
    read: &mut dyn FnMut(Range<usize>) -> Result<Vec<u8>, E>,
) -> Result<Range<usize>, E> {
    let probe = probe.max(ID3V2_HEADER_LEN.max(APE_HEADER_LEN));
    let mut start = 0;
    while start < len {
        let head = read(start..len.min(start + ID3V2_HEADER_LEN.max(APE_HEADER_LEN)))?;
        // An ID3v2 tag is skipped by its declared size (it must fit in the file); an APE
        // tag at the start is small and is measured whole.
        let skip = match id3v2_declared_len(&head) {
            Some(declared) => Some(declared).filter(|&d| d <= len - start),
            None if ape_header(&head).is_some() => {
                ape_len_at_start(&read(start..len.min(start + probe))?)
            }
            None => None,
        };
        match skip {
            Some(tag) if tag > 0 => start += tag,
            _ => break,
        }
    }
    let tail_start = start.max(len.saturating_sub(probe));
    let tail = read(tail_start..len)?;
    let mut end = tail.len();
    while let Some((_, tag)) = tail.get(..end).and_then(trailing_tag) {
        end -= tag;
    }
    Ok(start..tail_start + end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ape_tag, id3v1_tag, id3v2_tag, lyrics3v2_tag};

    #[test]
    fn id3v2_sizes_are_syncsafe_and_include_the_footer() {
        let tag = id3v2_tag(300, false);
        // 300 = 0b10_0101100: syncsafe bytes 0x02 0x2C.
        assert_eq!(&tag[6..10], &[0, 0, 0x02, 0x2C]);
        assert_eq!(id3v2_len(&tag), Some(310));
        let with_footer = id3v2_tag(300, true);
        assert_eq!(id3v2_len(&with_footer), Some(320));
        assert_eq!(id3v2_len_at_end(&with_footer), Some(320));
        assert_eq!(id3v2_len_at_end(&tag), None);
    }

    #[test]
    fn id3v2_with_impossible_fields_is_ignored() {
        let mut tag = id3v2_tag(20, false);
        tag[7] = 0x80; // not syncsafe
        assert_eq!(id3v2_len(&tag), None);
        let mut tag = id3v2_tag(20, false);
        tag[3] = 0xFF;
        assert_eq!(id3v2_len(&tag), None);
        // Declares more bytes than there are.
        let tag = id3v2_tag(20, false);
        assert_eq!(id3v2_len(&tag[..25]), None);
        assert_eq!(id3v2_len(b"ID3"), None);
    }

    #[test]
    fn trailing_tags_are_found_in_any_stack() {
        let audio = vec![0x11u8; 1000];
        let mut data = audio.clone();
        data.extend(ape_tag(3, true));
        data.extend(lyrics3v2_tag("[la la la]"));
        data.extend(id3v1_tag());
        assert_eq!(audio_range(&data), 0..1000);

        let mut no_header_ape = audio.clone();
        no_header_ape.extend(ape_tag(2, false));
        assert_eq!(audio_range(&no_header_ape), 0..1000);

        let mut lyrics_v1 = audio.clone();
        lyrics_v1.extend(b"LYRICSBEGINsome words LYRICSEND");
        lyrics_v1.extend(id3v1_tag());
        assert_eq!(audio_range(&lyrics_v1), 0..1000);
    }

    #[test]
    fn leading_tags_are_skipped_one_after_another() {
        let mut data = id3v2_tag(50, false);
        data.extend(id3v2_tag(7, true));
        data.extend(ape_tag(1, true));
        let start = data.len();
        data.extend([0x22u8; 64]);
        assert_eq!(audio_range(&data), start..start + 64);
    }

    #[test]
    fn extended_id3v1_is_removed_whole() {
        let mut data = vec![0x33u8; 500];
        let mut extended = vec![0u8; ID3V1_EXTENDED_LEN];
        extended[..4].copy_from_slice(b"TAG+");
        data.extend(extended);
        data.extend(id3v1_tag());
        assert_eq!(audio_range(&data), 0..500);
    }

    #[test]
    fn bogus_tag_sizes_do_not_escape_the_data() {
        let mut ape = vec![0u8; 40];
        let mut footer = ape_tag(0, false);
        footer[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        ape.extend(&footer);
        assert_eq!(ape_len_at_end(&ape), None);
        let mut lyrics = b"999999LYRICS200".to_vec();
        assert_eq!(lyrics3_len(&lyrics), None);
        lyrics.splice(0..0, *b"xx");
        assert_eq!(audio_range(&lyrics), 0..lyrics.len());
        assert_eq!(audio_range(&[]), 0..0);
        assert_eq!(audio_range(b"TAG"), 0..3);
    }

    #[test]
    fn the_audio_range_read_in_pieces_is_the_one_found_in_memory() {
        let mut data = id3v2_tag(5000, false);
        data.extend(id3v2_tag(7, true));
        data.extend([0x22u8; 300]);
        data.extend(ape_tag(40, true));
        data.extend(lyrics3v2_tag("la la"));
        data.extend(id3v1_tag());
        let mut reads = Vec::new();
        let range = audio_range_read::<()>(data.len(), 1 << 20, &mut |r| {
            reads.push(r.clone());
            Ok(data[r].to_vec())
        })
        .unwrap();
        assert_eq!(range, audio_range(&data));
        // The first tag's body was skipped, not read.
        assert!(
            reads.iter().all(|r| r.start >= 5000 || r.len() <= 32),
            "{reads:?}"
        );
        // No tags, and a file that is all tag.
        let plain = [0x22u8; 100];
        let whole =
            audio_range_read::<()>(plain.len(), 64, &mut |r| Ok(plain[r].to_vec())).unwrap();
        assert_eq!(whole, 0..100);
        let tag = id3v2_tag(20, false);
        let none = audio_range_read::<()>(tag.len(), 64, &mut |r| Ok(tag[r].to_vec())).unwrap();
        assert_eq!(none, audio_range(&tag));
    }
}
