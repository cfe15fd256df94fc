//! Tags and covers from ID3v2 (MP3), Vorbis comments (FLAC, Ogg Vorbis and Opus), MP4 atoms
//! and RIFF INFO.

use legato_transcode::{MAX_TAG_CHARS, read_tags};

use crate::util::{make, temp_file, tone};

const METADATA: [&str; 10] = [
    "-metadata",
    "title=Blue Monday",
    "-metadata",
    "artist=New Order",
    "-metadata",
    "album=Power, Corruption & Lies",
    "-metadata",
    "date=2001",
    "-metadata",
    "track=3",
];

fn cover(ext: &str) -> Vec<u8> {
    make(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=32x32",
            "-frames:v",
            "1",
        ],
        ext,
    )
}

/// A short tone with the standard metadata and, if given, a cover attached.
fn tagged(codec_args: &[&str], ext: &str, cover: Option<(&[u8], &str)>) -> Vec<u8> {
    let input = tone(0.5, 44_100, 2);
    let mut args: Vec<&str> = input.iter().map(String::as_str).collect();
    let cover_file = cover.map(|(bytes, ext)| temp_file(bytes, ext));
    if let Some((_, path)) = &cover_file {
        args.extend([
            "-i",
            path.to_str().unwrap(),
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:v",
            "copy",
        ]);
        args.extend(["-disposition:v", "attached_pic"]);
    }
    args.extend(codec_args);
    args.extend(METADATA);
    make(&args, ext)
}

fn assert_standard_text(tags: &legato_transcode::Tags, what: &str) {
    assert_eq!(tags.title.as_deref(), Some("Blue Monday"), "{what}");
    assert_eq!(tags.artist.as_deref(), Some("New Order"), "{what}");
    assert_eq!(
        tags.album.as_deref(),
        Some("Power, Corruption & Lies"),
        "{what}"
    );
    assert_eq!(tags.year, Some(2001), "{what}");
    assert_eq!(tags.track, Some(3), "{what}");
}

#[test]
fn mp3_id3v2_with_a_png_cover() {
    let png = cover("png");
    let mp3 = tagged(
        &[
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "-id3v2_version",
            "3",
            "-metadata:s:v",
            "comment=Cover (front)",
        ],
        "mp3",
        Some((&png, "png")),
    );
    let tags = read_tags(&mp3);
    assert_standard_text(&tags, "mp3");
    let cover = tags.cover.expect("the APIC cover");
    assert_eq!(cover.mime, "image/png");
    assert_eq!(cover.bytes, png);
}

#[test]
fn m4a_atoms_with_a_jpeg_cover() {
    let jpeg = cover("jpg");
    let m4a = tagged(&["-c:a", "aac", "-b:a", "96k"], "m4a", Some((&jpeg, "jpg")));
    let tags = read_tags(&m4a);
    assert_standard_text(&tags, "m4a");
    let cover = tags.cover.expect("the covr atom");
    assert_eq!(cover.mime, "image/jpeg");
    assert_eq!(cover.bytes, jpeg);
}

#[test]
fn flac_vorbis_comments_with_a_picture_block() {
    let png = cover("png");
    let flac = tagged(&["-c:a", "flac"], "flac", Some((&png, "png")));
    let tags = read_tags(&flac);
    assert_standard_text(&tags, "flac");
    assert_eq!(tags.cover.expect("the PICTURE block").bytes, png);
}

#[test]
fn ogg_vorbis_and_wav_text() {
    let ogg = tagged(&["-c:a", "libvorbis"], "ogg", None);
    assert_standard_text(&read_tags(&ogg), "ogg");
    assert!(read_tags(&ogg).cover.is_none());

    let wav = tagged(&["-c:a", "pcm_s16le"], "wav", None);
    let tags = read_tags(&wav);
    assert_eq!(tags.title.as_deref(), Some("Blue Monday"));
    assert_eq!(tags.artist.as_deref(), Some("New Order"));
}

#[test]
fn ogg_opus_comments() {
    let opus = tagged(&["-c:a", "libopus", "-b:a", "64k"], "opus", None);
    assert_standard_text(&read_tags(&opus), "opus");
    assert!(read_tags(&opus).cover.is_none());
}

#[test]
fn hostile_text_is_cleaned_and_capped() {
    let long = "x".repeat(1000);
    let input = tone(0.3, 44_100, 1);
    let mut args: Vec<&str> = input.iter().map(String::as_str).collect();
    let title = "title=Bad\u{1}\u{7}\ttitle\u{202E}";
    let artist = format!("artist={long}");
    args.extend([
        "-c:a",
        "libmp3lame",
        "-metadata",
        title,
        "-metadata",
        &artist,
    ]);
    let tags = read_tags(&make(&args, "mp3"));
    assert_eq!(tags.title.as_deref(), Some("Bad title"));
    assert_eq!(tags.artist.map(|a| a.chars().count()), Some(MAX_TAG_CHARS));
}
