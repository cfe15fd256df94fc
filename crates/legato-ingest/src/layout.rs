//! Every chunk name of a track, in one place.
//!
//! A track's chunks are its source (the upload, byte for byte, in pieces) and the renditions
//! of one *generation*: the playlists, the segments and the cover that one processing attempt
//! made. An MP3's source moves into its generation once published: the `original` segments
//! carry its frames and a remainder chunk the rest, and the pieces go. Each attempt names its renditions apart from every other attempt's (the claim count
//! of the job is the generation), so two processes that race on one job never write the same
//! name, and chunks stay immutable for a given name (the segment cache and HTTP validators
//! rely on that). The first attempt keeps the plain names players and the seed know
//! (`index.m3u8`); later ones prefix `gN-`.

use legato_media::segment_name;

/// Pieces of a stored source are at most this long: a MongoDB document stays far under its
/// 16 MB limit, and a download reads one piece at a time.
pub const SOURCE_PIECE_BYTES: usize = 8 << 20;

const SOURCE_PREFIX: &str = "source/";

/// The name players ask for the MP3-only master playlist by (`outputlist.m3u8` answers it
/// too); each generation stores its own under its prefix.
pub const MP3_PLAYLIST: &str = "mp3.m3u8";

/// The MP3-only master playlist of the generation whose playlist is `current`; `None` for a
/// playlist that does not follow our names (the seed's `outputlist.m3u8`).
pub fn mp3_playlist_beside(current: &str) -> Option<String> {
    current
        .strip_suffix(legato_store::PLAYLIST_NAMES[0])
        .map(|prefix| format!("{prefix}{MP3_PLAYLIST}"))
}

/// Name of the `index`-th piece of the source.
pub fn source_piece(index: u32) -> String {
    format!("{SOURCE_PREFIX}{index:04}")
}

/// The album art an upload carried beside the audio (its folder's `cover.jpg`), kept with
/// the source when the audio has no cover of its own: every processing of the track lays
/// it out as the generation's cover. Never removed while the track lives, not even once an
/// MP3's source moved into its renditions.
pub const FOLDER_COVER: &str = "source/cover";

/// Whether a chunk belongs to the source (kept across reprocessing).
pub fn is_source(name: &str) -> bool {
    name.starts_with(SOURCE_PREFIX)
}

/// The names of the renditions one processing attempt makes.
#[derive(Debug, Clone)]
pub struct Generation {
    prefix: String,
}

impl Generation {
    /// The generation of the claim with this fencing token (the job's claim count).
    pub fn new(claims: u64) -> Self {
        let prefix = if claims <= 1 {
            String::new()
        } else {
            format!("g{claims}-")
        };
        Self { prefix }
    }

    /// The track's playlist: a media playlist for one rendition, a master for several.
    pub fn playlist(&self) -> String {
        format!("{}{}", self.prefix, legato_store::PLAYLIST_NAMES[0])
    }

    /// Segment `index` of a track with one rendition.
    pub fn segment(&self, index: usize) -> String {
        format!("{}{}", self.prefix, segment_name(index))
    }

    /// The media playlist of rendition `rendition` (`original`, `128k`).
    pub fn variant_playlist(&self, rendition: &str) -> String {
        format!("{}{rendition}.m3u8", self.prefix)
    }

    /// Segment `index` of rendition `rendition`.
    pub fn variant_segment(&self, rendition: &str, index: usize) -> String {
        format!("{}{rendition}-{index:03}.ts", self.prefix)
    }

    /// The init segment of fMP4 rendition `rendition` (`aac128k`, `flac`).
    pub fn fmp4_init(&self, rendition: &str) -> String {
        format!("{}{rendition}-init.mp4", self.prefix)
    }

    /// Media segment `index` of fMP4 rendition `rendition`.
    pub fn fmp4_segment(&self, rendition: &str, index: usize) -> String {
        format!("{}{rendition}-{index:03}.m4s", self.prefix)
    }

    /// The master playlist of the MP3 renditions alone, for players that know only MPEG-TS
    /// with MP3 (written when a track has fMP4 renditions too).
    pub fn mp3_playlist(&self) -> String {
        format!("{}{MP3_PLAYLIST}", self.prefix)
    }

    /// What an MP3 source needs beside its `original` segments to be given back whole
    /// (see [`legato_media::original`]). The `/` keeps it out of the streaming routes.
    pub fn remainder(&self) -> String {
        format!("{}original/rest", self.prefix)
    }

    /// The cover image, by its MIME type.
    pub fn cover(&self, mime: &str) -> String {
        let ext = match mime {
            "image/png" => "png",
            "image/webp" => "webp",
            _ => "jpg",
        };
        format!("{}cover.{ext}", self.prefix)
    }
}

/// The generation a rendition chunk belongs to: `N` for `gN-…`, 1 for a plain name (the
/// first generation, and the seed's names); `None` for the source.
pub fn generation_of(name: &str) -> Option<u64> {
    if is_source(name) {
        return None;
    }
    let numbered = name
        .strip_prefix('g')
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(digits, _)| {
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())
                .flatten()
        });
    Some(numbered.unwrap_or(1))
}

/// The highest generation any of these chunks was named with (0 when there is none): a
/// reprocessing claims past it, so its names were never used for this track.
pub fn highest_generation<S: AsRef<str>>(names: &[S]) -> u64 {
    names
        .iter()
        .filter_map(|n| generation_of(n.as_ref()))
        .max()
        .unwrap_or(0)
}

/// Chunks of generations before `current`: the renditions a reprocessing replaced, removed
/// once their grace period is over. Later generations (an attempt in flight) and the source
/// are kept.
pub fn retired(all: Vec<String>, current: u64) -> Vec<String> {
    all.into_iter()
        .filter(|name| generation_of(name).is_some_and(|g| g < current))
        .collect()
}

/// Chunks of exactly `generation` (what one attempt wrote).
pub fn of_generation(all: Vec<String>, generation: u64) -> Vec<String> {
    all.into_iter()
        .filter(|name| generation_of(name) == Some(generation))
        .collect()
}

/// Chunks of a track that its published renditions do not use: what an attempt that lost a
/// race or died left behind. The source pieces stay unless `source_published`, that is the
/// source is now kept in the published renditions (an MP3 as its `original` segments).
pub fn unused(all: Vec<String>, published: &[String], source_published: bool) -> Vec<String> {
    all.into_iter()
        .filter(|name| {
            (source_published || !is_source(name))
                && name != FOLDER_COVER
                && !published.contains(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_never_share_a_name_and_the_first_keeps_the_plain_ones() {
        let first = Generation::new(1);
        let third = Generation::new(3);
        assert_eq!(first.playlist(), "index.m3u8");
        assert_eq!(third.playlist(), "g3-index.m3u8");
        assert_eq!(third.variant_segment("128k", 7), "g3-128k-007.ts");
        assert_ne!(first.segment(0), third.segment(0));
        assert_eq!(source_piece(12), "source/0012");
        assert!(is_source(&source_piece(0)) && !is_source(&first.playlist()));
        assert_eq!(third.remainder(), "g3-original/rest");
        assert_eq!(generation_of(&third.remainder()), Some(3));
        assert_eq!(generation_of(&first.remainder()), Some(1));
        assert!(!is_source(&first.remainder()));
    }

    #[test]
    fn generations_are_read_back_from_names() {
        let third = Generation::new(3);
        assert_eq!(generation_of(&third.variant_segment("64k", 2)), Some(3));
        assert_eq!(generation_of(&Generation::new(12).playlist()), Some(12));
        assert_eq!(generation_of("index.m3u8"), Some(1));
        assert_eq!(generation_of("outputlist0.ts"), Some(1));
        assert_eq!(generation_of("gx-index.m3u8"), Some(1));
        assert_eq!(generation_of(&source_piece(0)), None);
        let names = [
            "source/0000",
            "index.m3u8",
            "seg000.ts",
            "g3-index.m3u8",
            "g4-64k-000.ts",
        ];
        assert_eq!(highest_generation(&names), 4);
        assert_eq!(highest_generation(&["source/0000"]), 0);
        let all: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        assert_eq!(
            retired(all.clone(), 3),
            ["index.m3u8", "seg000.ts"],
            "the source, the current and a later generation stay"
        );
        assert_eq!(of_generation(all, 4), ["g4-64k-000.ts"]);
    }

    #[test]
    fn unused_keeps_the_source_and_the_published_set() {
        let all = vec![
            "source/0000".to_owned(),
            FOLDER_COVER.to_owned(),
            "index.m3u8".to_owned(),
            "segment000.ts".to_owned(),
            "g2-index.m3u8".to_owned(),
        ];
        let published = vec!["g2-index.m3u8".to_owned()];
        assert_eq!(
            unused(all.clone(), &published, false),
            ["index.m3u8", "segment000.ts"]
        );
        assert_eq!(
            unused(all, &published, true),
            ["source/0000", "index.m3u8", "segment000.ts"],
            "pieces of a source now kept in the renditions go, the folder's cover stays"
        );
        assert_eq!(generation_of(FOLDER_COVER), None, "never retired");
        assert_eq!(Generation::new(2).cover("image/webp"), "g2-cover.webp");
    }
}
