//! What a file is, from its bytes alone (never from a name or a Content-Type).
//!
//! Containers are recognised by their magic numbers, after any ID3v2 tags in front (some
//! taggers put one before FLAC, ADTS and even WAV data). Raw streams without a container
//! (MPEG audio, ADTS AAC) have to prove themselves with consecutive frame headers. What is
//! left is told apart well enough to say what it looks like: an image, a document, text.

use legato_media::Layer;
use legato_media::scan::scan_mp3;
use legato_media::tags::{id3v2_declared_len, id3v2_len};
use std::io::{Read, Seek, SeekFrom};

use crate::{SourceFormat, TranscodeError};

/// How far after its leading tags an MPEG audio stream may start: real files start at once
/// or after a little padding; a run of "frames" found deep inside other data is chance.
const MAX_MPEG_LEAD_IN: usize = 128 * 1024;

/// The result of sniffing: the format and where its data starts (after leading ID3v2 tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sniffed {
    pub format: SourceFormat,
    pub start: usize,
}

/// See [`crate::detect`].
pub(crate) fn sniff(data: &[u8]) -> Result<Sniffed, TranscodeError> {
    if data.is_empty() {
        return Err(TranscodeError::Empty);
    }
    let start = skip_id3v2(data);
    let body = data.get(start..).unwrap_or_default();
    if body.is_empty() {
        return Err(TranscodeError::NotAudio(
            "looks like an ID3 tag without any audio after it",
        ));
    }
    if let Some(format) = container(body)? {
        return Ok(Sniffed { format, start });
    }
    if is_adts(body) {
        return Ok(Sniffed {
            format: SourceFormat::Adts,
            start,
        });
    }
    not_audio_signature(body)?;
    if let Some(format) = mpeg_audio(data, start)? {
        return Ok(Sniffed { format, start });
    }
    if body.starts_with(&[0x0B, 0x77]) {
        return Err(unsupported("AC-3 (Dolby Digital) audio"));
    }
    Err(TranscodeError::NotAudio(
        text_kind(body).unwrap_or("no audio format we know was found in it"),
    ))
}

/// Bytes after the leading tags that [`sniff`] needs to tell every format (frame syncs of
/// a few MPEG frames, container headers).
const SNIFF_BYTES: u64 = 256 * 1024;

/// The start of a file as [`sniff`] needs it: any leading ID3v2 tags and [`SNIFF_BYTES`]
/// after them.
pub(crate) fn head<R: Read + Seek>(
    reader: &mut R,
) -> std::io::Result<Result<Vec<u8>, TranscodeError>> {
    let len = reader.seek(SeekFrom::End(0))?;
    let mut start = 0u64;
    loop {
        let mut header = [0u8; 10];
        reader.seek(SeekFrom::Start(start))?;
        let read = read_up_to(reader, &mut header)?;
        match id3v2_declared_len(&header[..read]) {
            Some(tag) if tag > 0 => start += tag as u64,
            _ => break,
        }
        if start > crate::MAX_LEADING_TAG_BYTES {
            return Ok(Err(unsupported(
                "A file whose leading ID3 tags are over 64 MB",
            )));
        }
    }
    let take = len.min(start + SNIFF_BYTES);
    let mut head = vec![0u8; usize::try_from(take).unwrap_or(usize::MAX)];
    reader.seek(SeekFrom::Start(0))?;
    let read = read_up_to(reader, &mut head)?;
    head.truncate(read);
    reader.seek(SeekFrom::Start(0))?;
    Ok(Ok(head))
}

/// Fills `buf` as far as the reader goes; how many bytes were read.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn unsupported(what: &str) -> TranscodeError {
    TranscodeError::Unsupported(what.to_owned())
}

/// The offset after any ID3v2 tags at the start (several may be stacked).
fn skip_id3v2(data: &[u8]) -> usize {
    let mut start = 0;
    while let Some(len) = data.get(start..).and_then(id3v2_len) {
        if len == 0 {
            break;
        }
        start += len;
    }
    start
}

/// Formats with a magic number at the start.
fn container(body: &[u8]) -> Result<Option<SourceFormat>, TranscodeError> {
    let at = |offset: usize, magic: &[u8]| body.get(offset..offset + magic.len()) == Some(magic);

    if at(0, b"RIFF") || at(0, b"RIFX") {
        return match body.get(8..12) {
            Some(b"WAVE") if at(0, b"RIFF") => Ok(Some(SourceFormat::Wav)),
            Some(b"WAVE") => Err(unsupported("Big-endian WAV (RIFX)")),
            Some(b"WEBP") => Err(TranscodeError::NotAudio("looks like a WebP image")),
            Some(b"AVI ") => Err(unsupported("AVI video")),
            _ => Err(unsupported("This RIFF file")),
        };
    }
    if at(0, b"RF64") || at(0, b"BW64") {
        return Err(unsupported("RF64/BW64 WAV (for files over 4 GB)"));
    }
    if at(0, b"FORM") {
        return match body.get(8..12) {
            Some(b"AIFF" | b"AIFC") => Ok(Some(SourceFormat::Aiff)),
            _ => Err(unsupported("This IFF file")),
        };
    }
    if at(0, b"fLaC") {
        return Ok(Some(SourceFormat::Flac));
    }
    if at(0, b"OggS") {
        return ogg(body).map(Some);
    }
    if at(4, b"ftyp") {
        return iso_bmff(body).map(Some);
    }
    let others: [(&[u8], &str); 12] = [
        (b"caff", "Core Audio Format (CAF)"),
        (b"wvpk", "WavPack"),
        (b"MAC ", "Monkey's Audio (APE)"),
        (b"TTA1", "True Audio (TTA)"),
        (b"MPCK", "Musepack"),
        (b"MP+", "Musepack"),
        (b"#!AMR", "AMR speech audio"),
        (b".snd", "Sun/NeXT audio (AU)"),
        (b"ADIF", "AAC in an ADIF stream"),
        (b"DSD ", "DSD audio (DSF)"),
        (b"FRM8", "DSD audio (DFF)"),
        (b"MThd", "MIDI (notes, not recorded sound)"),
    ];
    if let Some((_, what)) = others.iter().find(|(magic, _)| at(0, magic)) {
        return Err(unsupported(what));
    }
    if at(0, &EBML_MAGIC) {
        return matroska(body).map(Some);
    }
    if at(
        0,
        &[
            0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA,
        ],
    ) {
        return Err(unsupported("Windows Media (WMA/ASF)"));
    }
    Ok(None)
}

/// An Ogg stream: what its first packet (the codec's identification header) says.
fn ogg(body: &[u8]) -> Result<SourceFormat, TranscodeError> {
    // Page header: 27 bytes, then the segment table, then the first packet.
    let segments = usize::from(*body.get(26).unwrap_or(&0));
    let packet = body.get(27 + segments..).unwrap_or_default();
    let starts = |magic: &[u8]| packet.starts_with(magic);
    if starts(b"\x01vorbis") {
        Ok(SourceFormat::OggVorbis)
    } else if starts(b"OpusHead") {
        Ok(SourceFormat::OggOpus)
    } else if starts(b"\x7fFLAC") {
        Err(unsupported("FLAC in Ogg"))
    } else if starts(b"Speex   ") {
        Err(unsupported("Ogg Speex"))
    } else if starts(b"\x80theora") {
        Err(unsupported("Ogg Theora video"))
    } else {
        Err(unsupported("This kind of Ogg stream"))
    }
}

/// The ID of an EBML header, the first bytes of every Matroska and WebM file.
const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];
/// The ID of the `DocType` element in an EBML header.
const EBML_DOC_TYPE: u32 = 0x4282;

/// An EBML file (Matroska, WebM) by the `DocType` of its header. Which codec its audio track
/// holds is found out when it is opened.
fn matroska(body: &[u8]) -> Result<SourceFormat, TranscodeError> {
    match ebml_doc_type(body) {
        Some(b"webm" | b"matroska") => Ok(SourceFormat::Matroska),
        _ => Err(unsupported("This EBML file (not Matroska or WebM)")),
    }
}

/// The `DocType` of the EBML header at the start of `body`, if it is there whole.
fn ebml_doc_type(body: &[u8]) -> Option<&[u8]> {
    let (id, after_id) = ebml_vint(body, false)?;
    if id != u64::from(u32::from_be_bytes(EBML_MAGIC)) {
        return None;
    }
    let (len, start) = ebml_vint(body.get(after_id..)?, true)?;
    let start = after_id + start;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    let mut header = body.get(start..end)?;
    while !header.is_empty() {
        let (id, id_len) = ebml_vint(header, false)?;
        let (len, len_len) = ebml_vint(header.get(id_len..)?, true)?;
        let data_start = id_len + len_len;
        let data_end = data_start.checked_add(usize::try_from(len).ok()?)?;
        let data = header.get(data_start..data_end)?;
        if id == u64::from(EBML_DOC_TYPE) {
            // A string element may be padded with zeros.
            let text = data.split(|&b| b == 0).next().unwrap_or_default();
            return Some(text);
        }
        header = &header[data_end..];
    }
    None
}

/// An EBML variable-length integer at the start of `bytes` and its length: an element ID
/// keeps its length marker (`size` false), a data size loses it. An unknown size (all ones)
/// is `u64::MAX`.
fn ebml_vint(bytes: &[u8], size: bool) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut value = if size {
        u64::from(first) & (0xFF >> len)
    } else {
        u64::from(first)
    };
    for &byte in bytes.get(1..len)? {
        value = (value << 8) | u64::from(byte);
    }
    if size && value == (1u64 << (7 * len)) - 1 {
        value = u64::MAX;
    }
    Some((value, len))
}

/// An ISO base media file (MP4, M4A, MOV, 3GP; also HEIF/AVIF images) by its major brand.
fn iso_bmff(body: &[u8]) -> Result<SourceFormat, TranscodeError> {
    let brand = body.get(8..12).unwrap_or_default();
    match brand {
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"mif1" | b"msf1" => {
            Err(TranscodeError::NotAudio("looks like a HEIF image (HEIC)"))
        }
        b"avif" | b"avis" => Err(TranscodeError::NotAudio("looks like an AVIF image")),
        b"crx " => Err(TranscodeError::NotAudio("looks like a camera raw image")),
        // Everything else (M4A, mp42, isom, qt, 3gp, ...) is read as MP4; whether its audio
        // track is something we decode is found out when it is opened.
        _ => Ok(SourceFormat::Mp4Aac),
    }
}

/// Parses an ADTS header at the start of `bytes`: (frame length, sample rate index).
fn adts_header(bytes: &[u8]) -> Option<usize> {
    let header: [u8; 7] = bytes.get(..7)?.try_into().ok()?;
    // 12-bit sync, then ID, and layer 00 (a layer that MPEG audio never uses).
    if header[0] != 0xFF || header[1] & 0xF6 != 0xF0 {
        return None;
    }
    let sample_rate_index = (header[2] >> 2) & 0x0F;
    if sample_rate_index > 12 {
        return None;
    }
    let len = (usize::from(header[3] & 0x03) << 11)
        | (usize::from(header[4]) << 3)
        | usize::from(header[5] >> 5);
    (len >= 7).then_some(len)
}

/// ADTS AAC: a header at the start, confirmed by the next two (or by the end of the data).
fn is_adts(body: &[u8]) -> bool {
    let mut offset = 0;
    for _ in 0..3 {
        let Some(len) = body.get(offset..).and_then(adts_header) else {
            return false;
        };
        offset += len;
        if offset >= body.len() {
            return true;
        }
    }
    true
}

/// MPEG audio (any version and layer), confirmed by consecutive frames (see
/// [`legato_media::scan`]) starting near the beginning.
fn mpeg_audio(data: &[u8], start: usize) -> Result<Option<SourceFormat>, TranscodeError> {
    let Ok(scan) = scan_mp3(data) else {
        return Ok(None);
    };
    let Some(first) = scan.info_frame.or_else(|| scan.frames.first().copied()) else {
        return Ok(None);
    };
    if first
        .offset
        .saturating_sub(start.max(scan.audio_range.start))
        > MAX_MPEG_LEAD_IN
    {
        return Ok(None);
    }
    match first.header.layer() {
        Layer::Three => Ok(Some(SourceFormat::Mp3)),
        Layer::Two => Err(unsupported("MPEG Layer II audio (MP2)")),
        Layer::One => Err(unsupported("MPEG Layer I audio (MP1)")),
    }
}

/// Well-known files that are not audio, by magic number.
fn not_audio_signature(body: &[u8]) -> Result<(), TranscodeError> {
    let signatures: [(&[u8], &'static str); 17] = [
        (b"\x89PNG\r\n\x1a\n", "looks like a PNG image"),
        (b"\xFF\xD8\xFF", "looks like a JPEG image"),
        (b"GIF87a", "looks like a GIF image"),
        (b"GIF89a", "looks like a GIF image"),
        (b"II*\0", "looks like a TIFF image"),
        (b"MM\0*", "looks like a TIFF image"),
        (b"%PDF-", "looks like a PDF document"),
        (
            b"PK\x03\x04",
            "looks like a ZIP archive (or an office document)",
        ),
        (b"\x1F\x8B", "looks like a gzip archive"),
        (b"7z\xBC\xAF\x27\x1C", "looks like a 7-Zip archive"),
        (b"Rar!\x1A\x07", "looks like a RAR archive"),
        (b"\xFD7zXZ\0", "looks like an xz archive"),
        (b"\x28\xB5\x2F\xFD", "looks like a zstd archive"),
        (b"\x7FELF", "looks like a program (ELF executable)"),
        (b"SQLite format 3\0", "looks like an SQLite database"),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "looks like an old office document",
        ),
        (b"\0\0\x01\xBA", "looks like an MPEG program stream (video)"),
    ];
    if let Some((_, what)) = signatures.iter().find(|(magic, _)| body.starts_with(magic)) {
        return Err(TranscodeError::NotAudio(what));
    }
    if body.first() == Some(&0x47) && body.get(188) == Some(&0x47) && body.get(376) == Some(&0x47) {
        return Err(unsupported("MPEG transport stream (.ts)"));
    }
    Ok(())
}

/// If the start of the data is text, what kind.
fn text_kind(body: &[u8]) -> Option<&'static str> {
    let head = &body[..body.len().min(4096)];
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A multi-byte character cut at the end of the window is still text.
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&head[..error.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let readable = text
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .count();
    if text.is_empty() || readable * 100 < text.chars().count() * 95 {
        return None;
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let lower: String = trimmed.chars().take(16).collect::<String>().to_lowercase();
    Some(
        if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
            "looks like an HTML page"
        } else if lower.starts_with("<?xml") || lower.starts_with("<svg") {
            "looks like an XML document (or an SVG image)"
        } else if lower.starts_with("#extm3u") {
            "looks like a playlist (M3U), not the audio it lists"
        } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
            "looks like JSON or other text"
        } else {
            "looks like text"
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;

    fn format(data: &[u8]) -> Result<SourceFormat, TranscodeError> {
        sniff(data).map(|sniffed| sniffed.format)
    }

    fn not_audio(data: &[u8]) -> &'static str {
        match format(data) {
            Err(TranscodeError::NotAudio(what)) => what,
            other => panic!("expected not-audio, got {other:?}"),
        }
    }

    #[test]
    fn empty_is_its_own_error() {
        assert_eq!(format(b""), Err(TranscodeError::Empty));
    }

    #[test]
    fn containers_by_magic() {
        let mut wav = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        wav.extend([0; 32]);
        assert_eq!(format(&wav), Ok(SourceFormat::Wav));
        assert_eq!(format(b"FORM\0\0\0\0AIFFCOMM"), Ok(SourceFormat::Aiff));
        assert_eq!(format(b"fLaC\0\0\0\x22"), Ok(SourceFormat::Flac));
        assert_eq!(
            format(b"\0\0\0\x20ftypM4A \0\0\0\0"),
            Ok(SourceFormat::Mp4Aac)
        );
    }

    #[test]
    fn ogg_is_told_apart_by_its_first_packet() {
        let page = |packet: &[u8]| {
            let mut page = b"OggS\0\x02".to_vec();
            page.extend([0; 20]);
            page.push(1);
            page.push(u8::try_from(packet.len()).unwrap());
            page.extend(packet);
            page
        };
        assert_eq!(
            format(&page(b"\x01vorbis\0\0")),
            Ok(SourceFormat::OggVorbis)
        );
        assert_eq!(
            format(&page(b"OpusHead\x01\x02\x38\x01")),
            Ok(SourceFormat::OggOpus)
        );
        assert_eq!(
            format(&page(b"Speex   1.2")).unwrap_err().to_string(),
            "Ogg Speex is not supported yet"
        );
    }

    /// An EBML header holding `DocType` `doc_type` (with a `DocTypeVersion` before it, as
    /// muxers write), and the start of a Segment after it.
    fn ebml(doc_type: &[u8]) -> Vec<u8> {
        let mut children = vec![0x42, 0x87, 0x81, 0x04];
        children.extend([0x42, 0x82, 0x80 | u8::try_from(doc_type.len()).unwrap()]);
        children.extend(doc_type);
        let mut data = EBML_MAGIC.to_vec();
        data.push(0x80 | u8::try_from(children.len()).unwrap());
        data.extend(children);
        data.extend([
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        data
    }

    #[test]
    fn matroska_and_webm_by_their_doc_type() {
        assert_eq!(format(&ebml(b"webm")), Ok(SourceFormat::Matroska));
        assert_eq!(format(&ebml(b"matroska")), Ok(SourceFormat::Matroska));
        // A zero-padded string, and a size written in more bytes than it needs.
        let mut padded = ebml(b"webm\0\0");
        assert_eq!(format(&padded), Ok(SourceFormat::Matroska));
        let size = padded[4] & 0x7F;
        padded.splice(4..5, [0x40, size]);
        assert_eq!(format(&padded), Ok(SourceFormat::Matroska));
        for other in [
            ebml(b"mkvfoo"),
            ebml(b""),
            EBML_MAGIC.to_vec(),
            ebml(b"webm")[..9].to_vec(),
        ] {
            assert_eq!(format(&other).unwrap_err().code(), "unsupported-format");
        }
    }

    #[test]
    fn images_documents_and_text_are_named() {
        assert_eq!(
            not_audio(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            "looks like a PNG image"
        );
        assert_eq!(
            not_audio(b"\xFF\xD8\xFF\xE0\0\x10JFIF"),
            "looks like a JPEG image"
        );
        assert_eq!(not_audio(b"%PDF-1.7\n"), "looks like a PDF document");
        assert_eq!(not_audio(b"hello, this is not a song\n"), "looks like text");
        assert_eq!(
            not_audio(b"<!DOCTYPE html><html></html>"),
            "looks like an HTML page"
        );
        assert_eq!(
            not_audio(&[0x00, 0x01, 0x02, 0x03, 0xFE, 0x80, 0x00, 0x13]),
            "no audio format we know was found in it"
        );
        assert_eq!(
            format(b"RIFF\0\0\0\0WEBPVP8 ").unwrap_err().code(),
            "not-audio"
        );
    }

    #[test]
    fn id3v2_in_front_is_skipped() {
        let mut data = b"ID3\x04\0\0\0\0\0\x04abcd".to_vec();
        data.extend(b"fLaC\0\0\0\x22");
        let sniffed = sniff(&data).unwrap();
        assert_eq!(sniffed.format, SourceFormat::Flac);
        assert_eq!(sniffed.start, 14);
        assert_eq!(
            format(b"ID3\x04\0\0\0\0\0\x04abcd").unwrap_err().code(),
            "not-audio"
        );
    }

    #[test]
    fn a_reader_sees_what_the_bytes_show_past_large_leading_tags() {
        let through_reader =
            |data: &[u8]| crate::detect_reader(&mut std::io::Cursor::new(data)).unwrap();
        // Two ID3v2 tags of 400 KB each (more than SNIFF_BYTES), then FLAC.
        let size = 400_000u32;
        let syncsafe = |n: u32| {
            [
                (n >> 21) as u8 & 0x7F,
                (n >> 14) as u8 & 0x7F,
                (n >> 7) as u8 & 0x7F,
                n as u8 & 0x7F,
            ]
        };
        let mut data = Vec::new();
        for _ in 0..2 {
            data.extend(b"ID3\x04\0\0");
            data.extend(syncsafe(size));
            data.extend(std::iter::repeat_n(0u8, size as usize));
        }
        data.extend(b"fLaC\0\0\0\x22");
        data.extend([0u8; 600_000]);
        assert_eq!(through_reader(&data), Ok(SourceFormat::Flac));
        assert_eq!(through_reader(&data), format(&data));
        for bytes in [&b""[..], b"%PDF-1.7\n", b"hello, this is not a song\n"] {
            assert_eq!(through_reader(bytes), format(bytes));
        }
    }

    #[test]
    fn adts_needs_consecutive_headers() {
        // A 10-byte ADTS frame (7-byte header, no CRC), 44.1 kHz, stereo, repeated.
        let frame = [0xFF, 0xF1, 0x50, 0x80, 0x01, 0x5F, 0xFC, 1, 2, 3];
        let stream: Vec<u8> = frame.iter().copied().cycle().take(40).collect();
        assert_eq!(format(&stream), Ok(SourceFormat::Adts));
        let mut broken = frame.to_vec();
        broken.extend([0u8; 30]);
        assert_ne!(format(&broken), Ok(SourceFormat::Adts));
    }
}
