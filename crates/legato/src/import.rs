//! What `legato add` does on this machine before anything is sent: finds the files under the
//! paths it is given, tells audio from everything else by the bytes (not the name), and
//! hashes each file so the server can be asked whether it has it already.
//!
//! All of it is blocking file work, meant for `spawn_blocking`.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use legato_transcode::TranscodeError;
use sha2::{Digest, Sha256};

/// Bytes read at a time when hashing.
const HASH_BLOCK_BYTES: usize = 1 << 20;

/// A file to consider uploading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub size: u64,
    /// Named on the command line rather than found in a folder: sent whatever its bytes are
    /// (the server says why it refuses it), as `legato add FILE` always did.
    pub named: bool,
    /// The art of the folder it was found in (or of the nearest folder above it that has
    /// some, within the walk), sent beside it as the track's cover.
    pub art: Option<PathBuf>,
}

/// The files found under the command's paths.
#[derive(Debug, Default)]
pub struct Found {
    /// In the order of the arguments, each folder's entries sorted by name.
    pub files: Vec<Candidate>,
    /// Entries inside folders that could not be read (a folder without permission, a broken
    /// link), with the reason; the rest of the walk goes on.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Entries inside folders that are not files and were left out, with the reason: a named
    /// pipe, a socket, a device, a link to a folder (never followed). Names starting with `.`
    /// are left out without a word.
    pub skipped: Vec<(PathBuf, String)>,
    /// Each folder with art, and the image chosen (see [`ART_NAMES`]); the images are not
    /// among `files`.
    pub art: Vec<(PathBuf, PathBuf)>,
    /// Some argument was a folder.
    pub folders: bool,
}

/// The names of a folder's art, without their extension, first found first.
pub const ART_NAMES: [&str; 4] = ["cover", "folder", "front", "album"];
/// The extensions of a folder's art, first found first.
pub const ART_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];
/// Largest art sent (what the server takes).
const MAX_ART_BYTES: u64 = legato_client::MAX_COVER_BYTES;

/// Finds the files to upload: each path that is a file, and every regular file under each
/// path that is a folder, recursively. Names starting with `.` inside folders are skipped
/// (`.DS_Store`, `.git`, editors' temporary files); links to files are followed, links to
/// folders are not (no loops, no walking out of the library). An argument that does not
/// exist or is neither a file nor a folder is an error, reported for every such argument, so
/// that a typo is caught before anything is uploaded.
pub fn find(paths: &[PathBuf]) -> Result<Found, Vec<(PathBuf, String)>> {
    let mut found = Found::default();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => found.files.push(Candidate {
                path: path.clone(),
                size: meta.len(),
                named: true,
                art: None,
            }),
            Ok(meta) if meta.is_dir() => {
                found.folders = true;
                walk(path, &mut found);
            }
            Ok(meta) => errors.push((
                path.clone(),
                format!("not a file or a folder: {}", kind_of(&meta.file_type())),
            )),
            Err(err) => errors.push((path.clone(), io_reason(&err))),
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// Adds the files under `root` to `found`, depth first, in name order (`a/x.mp3` before
/// `b.mp3`).
fn walk(root: &Path, found: &mut Found) {
    // A stack of the folders being read rather than recursion: a deep tree cannot overflow it.
    let mut stack = vec![entries(root, None, found)];
    while let Some((folder, art)) = stack.last_mut() {
        let art = art.clone();
        let Some(entry) = folder.next() else {
            stack.pop();
            continue;
        };
        let path = entry.path();
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(err) => {
                found.unreadable.push((path, io_reason(&err)));
                continue;
            }
        };
        if kind.is_dir() {
            let inner = entries(&path, art, found);
            stack.push(inner);
            continue;
        }
        // The link's target, for a link; the entry itself otherwise.
        let meta = if kind.is_symlink() {
            std::fs::metadata(&path)
        } else {
            entry.metadata()
        };
        match meta {
            Ok(meta) if meta.is_file() => found.files.push(Candidate {
                path,
                size: meta.len(),
                named: false,
                art,
            }),
            Ok(meta) if kind.is_symlink() && meta.is_dir() => found
                .skipped
                .push((path, "a link to a folder, not followed".to_owned())),
            // A pipe, a socket, a device (or a link to one): reading one could block for
            // ever or never end.
            Ok(meta) => {
                let what = kind_of(&meta.file_type());
                let reason = if kind.is_symlink() {
                    format!("a link to {what}, not a file")
                } else {
                    format!("{what}, not a file")
                };
                found.skipped.push((path, reason));
            }
            Err(err) if kind.is_symlink() && err.kind() == std::io::ErrorKind::NotFound => {
                found
                    .unreadable
                    .push((path, "a link to nothing".to_owned()));
            }
            Err(err) => found.unreadable.push((path, io_reason(&err))),
        }
    }
}

/// What kind of entry a file type is, for the report: "a named pipe (FIFO)", "a socket", ….
fn kind_of(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_symlink() {
        "a link"
    } else if kind.is_file() {
        "a file"
    } else {
        "an entry of an unknown kind"
    }
}

/// A folder being walked: its entries left, and the art its files go with.
type Folder = (std::vec::IntoIter<std::fs::DirEntry>, Option<PathBuf>);

/// The entries of a folder not starting with `.`, in name order, without its art; an
/// unreadable folder is noted in `found` and has none. Its art is its own (noted in
/// `found`), else `inherited`, the art of the folder it is in.
fn entries(folder: &Path, inherited: Option<PathBuf>, found: &mut Found) -> Folder {
    let read = match std::fs::read_dir(folder) {
        Ok(read) => read,
        Err(err) => {
            found
                .unreadable
                .push((folder.to_path_buf(), io_reason(&err)));
            return (Vec::new().into_iter(), inherited);
        }
    };
    let mut entries: Vec<_> = read
        .filter_map(|entry| match entry {
            Ok(entry) => Some(entry),
            Err(err) => {
                found
                    .unreadable
                    .push((folder.to_path_buf(), io_reason(&err)));
                None
            }
        })
        .filter(|entry| !entry.file_name().as_encoded_bytes().starts_with(b"."))
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    // Every image named as art is art, not a file to import; the first by `ART_NAMES`, then
    // `ART_EXTENSIONS`, is the folder's.
    let mut art: Vec<(usize, PathBuf)> = Vec::new();
    entries.retain(|entry| match art_rank(entry) {
        Some(rank) => {
            art.push((rank, entry.path()));
            false
        }
        None => true,
    });
    art.sort();
    let own = art.into_iter().next().map(|(_, path)| path);
    if let Some(own) = &own {
        found.art.push((folder.to_path_buf(), own.clone()));
    }
    (entries.into_iter(), own.or(inherited))
}

/// Where an entry stands among a folder's art (lower first), if it is art: named as art
/// (case aside), a file (or a link to one) of at most [`MAX_ART_BYTES`] whose bytes are a
/// JPEG, PNG or WebP image. An image named as art that is none of these is left among the
/// files, and reported as they are.
fn art_rank(entry: &std::fs::DirEntry) -> Option<usize> {
    let name = entry.file_name();
    let name = name.to_str()?.to_ascii_lowercase();
    let (stem, extension) = name.rsplit_once('.')?;
    let by_name = ART_NAMES.iter().position(|n| *n == stem)?;
    let by_extension = ART_EXTENSIONS.iter().position(|e| *e == extension)?;
    let meta = std::fs::metadata(entry.path()).ok()?;
    if !meta.is_file() || meta.len() > MAX_ART_BYTES {
        return None;
    }
    let mut head = [0u8; 12];
    let mut file = std::fs::File::open(entry.path()).ok()?;
    let n = read_head(&mut file, &mut head).ok()?;
    is_image(&head[..n]).then_some(by_name * ART_EXTENSIONS.len() + by_extension)
}

/// Reads up to `head.len()` bytes from the start of `reader`.
fn read_head(reader: &mut impl Read, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(n)
}

/// Whether bytes start a JPEG, PNG or WebP image (as the server tells a cover).
fn is_image(head: &[u8]) -> bool {
    head.starts_with(&[0xFF, 0xD8, 0xFF])
        || head.starts_with(b"\x89PNG\r\n\x1a\n")
        || (head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP")
}

/// What a look at a file's bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// Audio (or something that starts like audio; the server has the last word), with the
    /// SHA-256 of the whole file, lowercase hex, as the server computes it.
    Audio { sha256: String },
    /// Not audio: what it looks like instead ("looks like a PNG image", "the file is empty").
    NotAudio(String),
    /// The file could not be read.
    Unreadable(String),
    /// Larger than the server's upload limit (`limit` bytes): not hashed, not sent.
    TooLarge { limit: u64 },
}

/// Looks at a file: unless it was named on the command line, its start must look like audio
/// (only its head is read for that); then, unless it is larger than `limit` (the server's
/// upload limit, when known), the whole file is hashed. A file over the limit is never
/// read beyond its head: hashing gigabytes the server will refuse is time lost.
pub fn look(candidate: &Candidate, limit: Option<u64>) -> Look {
    let unreadable = |err: std::io::Error| Look::Unreadable(io_reason(&err));
    let too_large = limit.filter(|&limit| candidate.size > limit);
    // A named file is sent whatever it holds: over the limit, it is not even opened.
    if let (true, Some(limit)) = (candidate.named, too_large) {
        return Look::TooLarge { limit };
    }
    let mut file = match std::fs::File::open(&candidate.path) {
        Ok(file) => file,
        Err(err) => return unreadable(err),
    };
    if !candidate.named {
        match legato_transcode::detect_reader(&mut file) {
            Err(err) => return unreadable(err),
            Ok(Err(err @ (TranscodeError::NotAudio(_) | TranscodeError::Empty))) => {
                return Look::NotAudio(err.to_string());
            }
            // Audio, or audio this build does not decode (Ogg Speex, …): the server decides,
            // and a newer one may take it.
            Ok(_) => {}
        }
        if let Some(limit) = too_large {
            return Look::TooLarge { limit };
        }
        if let Err(err) = file.rewind() {
            return unreadable(err);
        }
    }
    match sha256(&mut file) {
        Ok(sha256) => Look::Audio { sha256 },
        Err(err) => unreadable(err),
    }
}

/// SHA-256 of everything `reader` gives, lowercase hex.
fn sha256(reader: &mut impl Read) -> std::io::Result<String> {
    use std::fmt::Write as _;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; HASH_BLOCK_BYTES];
    loop {
        match reader.read(&mut block) {
            Ok(0) => break,
            Ok(n) => hasher.update(&block[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        }))
}

/// A path as it may be printed to a terminal: every character that could move the cursor,
/// change colours or reorder text (control characters, the escape character, bidirectional
/// overrides) is written as an escape (`\n`, `\e`, `\u{202e}`), a backslash as `\\`, and
/// bytes that are not UTF-8 as `\xNN`. Printable text, accents and scripts are left as they
/// are. The one way `legato` shows a file name.
pub fn shown(path: &Path) -> String {
    printable(path.as_os_str().as_encoded_bytes())
}

/// See [`shown`]: any bytes, as they may be printed.
pub fn printable(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{1b}' => out.push_str("\\e"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() || is_bidi_control(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// The characters that reorder displayed text (embeddings, overrides, isolates, marks).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The operating system's reason without the `(os error N)` noise.
pub fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of an MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz), twice, as detection
    /// wants a header confirmed by the next one.
    fn mp3_like() -> Vec<u8> {
        let mut frame = vec![0xFF, 0xFB, 0x90, 0x64];
        frame.resize(417, 0);
        frame.repeat(4)
    }

    #[test]
    fn folders_are_walked_in_name_order_without_hidden_entries_or_linked_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/inner")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        for name in [
            "z.mp3",
            "a.txt",
            "b/inner/c.flac",
            "b/x.wav",
            ".DS_Store",
            ".hidden/h.mp3",
        ] {
            std::fs::write(root.join(name), b"x").unwrap();
        }
        std::os::unix::fs::symlink(root, root.join("b/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("z.mp3"), root.join("link.mp3")).unwrap();
        std::os::unix::fs::symlink(root.join("gone"), root.join("dangling.mp3")).unwrap();

        let found = find(&[root.to_path_buf()]).unwrap();
        let names: Vec<_> = found
            .files
            .iter()
            .map(|c| {
                c.path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            ["a.txt", "b/inner/c.flac", "b/x.wav", "link.mp3", "z.mp3"]
        );
        assert!(found.folders);
        assert!(found.files.iter().all(|c| !c.named && c.size == 1));
        assert_eq!(found.unreadable.len(), 1, "{:?}", found.unreadable);
        assert!(found.unreadable[0].0.ends_with("dangling.mp3"));
        assert_eq!(
            found.skipped,
            [(
                root.join("b/loop"),
                "a link to a folder, not followed".to_owned()
            )]
        );
    }

    #[test]
    fn folder_art_is_chosen_by_name_then_extension_and_inherited_by_inner_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("Album/CD 1")).unwrap();
        std::fs::create_dir_all(root.join("Other")).unwrap();
        let jpeg = b"\xFF\xD8\xFF\xE0 a jpeg".to_vec();
        let png = b"\x89PNG\r\n\x1a\n a png".to_vec();
        for (name, bytes) in [
            ("Album/Folder.PNG", png.clone()),
            ("Album/COVER.jpeg", jpeg.clone()),
            ("Album/cover.webp", b"RIFF\0\0\0\0WEBPVP8 ".to_vec()),
            ("Album/01.mp3", b"x".to_vec()),
            ("Album/CD 1/02.mp3", b"x".to_vec()),
            // Named as art, but no image: a file like any other.
            ("Other/cover.jpg", b"not an image".to_vec()),
            ("Other/03.mp3", b"x".to_vec()),
        ] {
            std::fs::write(root.join(name), bytes).unwrap();
        }
        let found = find(&[root.to_path_buf()]).unwrap();
        let cover = root.join("Album/COVER.jpeg");
        assert_eq!(found.art, [(root.join("Album"), cover.clone())]);
        let files: Vec<(PathBuf, Option<PathBuf>)> = found
            .files
            .iter()
            .map(|c| (c.path.strip_prefix(root).unwrap().to_owned(), c.art.clone()))
            .collect();
        assert_eq!(
            files,
            [
                (PathBuf::from("Album/01.mp3"), Some(cover.clone())),
                (PathBuf::from("Album/CD 1/02.mp3"), Some(cover)),
                (PathBuf::from("Other/03.mp3"), None),
                (PathBuf::from("Other/cover.jpg"), None),
            ]
        );
    }

    #[test]
    fn pipes_and_sockets_in_folders_are_skipped_with_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let fifo = root.join("pipe.mp3");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        std::os::unix::fs::symlink(&fifo, root.join("to-pipe.mp3")).unwrap();
        std::fs::write(root.join("song.mp3"), b"x").unwrap();

        let found = find(&[root.to_path_buf()]).unwrap();
        assert_eq!(found.files.len(), 1);
        let reasons: Vec<(String, &str)> = found
            .skipped
            .iter()
            .map(|(path, reason)| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, reason.as_str())
            })
            .collect();
        assert_eq!(
            reasons,
            [
                ("pipe.mp3".to_owned(), "a named pipe (FIFO), not a file"),
                ("sock".to_owned(), "a socket, not a file"),
                (
                    "to-pipe.mp3".to_owned(),
                    "a link to a named pipe (FIFO), not a file"
                ),
            ]
        );
        // Named on the command line, it is an error that says what it is.
        let errors = find(&[fifo]).unwrap_err();
        assert_eq!(errors[0].1, "not a file or a folder: a named pipe (FIFO)");
    }

    #[test]
    fn names_are_printed_with_controls_and_invalid_bytes_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"a\nb\x1b[31mred\t\\x\xff\xfe\xe2\x80\xae.mp3");
        assert_eq!(
            shown(Path::new(name)),
            "a\\nb\\e[31mred\\t\\\\x\\xff\\xfe\\u{202e}.mp3"
        );
        assert_eq!(printable("Björk — Jóga".as_bytes()), "Björk — Jóga");
        assert_eq!(printable(b"\x7f\x00"), "\\u{7f}\\u{0}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_without_being_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.mp3");
        let mut bytes = mp3_like();
        bytes.resize(100_000, 0);
        std::fs::write(&path, &bytes).unwrap();
        let candidate = |named| Candidate {
            path: path.clone(),
            size: 100_000,
            named,
            art: None,
        };
        assert_eq!(
            look(&candidate(false), Some(99_999)),
            Look::TooLarge { limit: 99_999 }
        );
        assert_eq!(look(&candidate(true), Some(1)), Look::TooLarge { limit: 1 });
        assert!(matches!(
            look(&candidate(false), Some(100_000)),
            Look::Audio { .. }
        ));
        // Not audio stays "not audio", whatever its size.
        std::fs::write(&path, vec![b'x'; 100_000]).unwrap();
        assert!(matches!(
            look(&candidate(false), Some(10)),
            Look::NotAudio(_)
        ));
    }

    #[test]
    fn a_missing_argument_is_an_error_before_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.mp3");
        std::fs::write(&file, b"x").unwrap();
        let errors = find(&[file, dir.path().join("nope.mp3")]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].1, "no such file");
    }

    #[test]
    fn audio_is_told_by_its_bytes_and_hashed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let candidate = |name: &str, bytes: &[u8], named: bool| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            Candidate {
                path,
                size: bytes.len() as u64,
                named,
                art: None,
            }
        };
        let audio = mp3_like();
        let Look::Audio { sha256 } = look(&candidate("song.bin", &audio, false), None) else {
            panic!("not taken for audio");
        };
        assert_eq!(sha256, format!("{:x}", Sha256::digest(&audio)));
        assert_eq!(sha256.len(), 64);

        let text = candidate("lyrics.mp3", b"la la la, not a song\n", false);
        assert!(matches!(look(&text, None), Look::NotAudio(what) if what.contains("text")));
        assert!(matches!(
            look(&candidate("empty.mp3", b"", false), None),
            Look::NotAudio(_)
        ));
        // Named files are sent whatever they hold: the server says why it refuses them.
        assert!(matches!(
            look(
                &Candidate {
                    named: true,
                    ..text
                },
                None
            ),
            Look::Audio { .. }
        ));
        let missing = Candidate {
            path: dir.path().join("gone.mp3"),
            size: 0,
            named: false,
            art: None,
        };
        assert_eq!(
            look(&missing, None),
            Look::Unreadable("no such file".to_owned())
        );
    }
}
