//! Every chunk name of a track, in one place.
//!
//! A track's chunks are its source (the upload, byte for byte, in pieces) and the renditions
//! of one *generation*: the playlists, the segments and the cover that one processing attempt
//! made. Each attempt names its renditions apart from every other attempt's (the claim count
//! of the job is the generation), so two processes that race on one job never write the same
//! name, and chunks stay immutable for a given name (the segment cache and HTTP validators
//! rely on that). The first attempt keeps the plain names players and the seed know
//! (`index.m3u8`); later ones prefix `gN-`.

use legato_media::segment_name;

/// Pieces of a stored source are at most this long: a MongoDB document stays far under its
/// 16 MB limit, and a download reads one piece at a time.
pub const SOURCE_PIECE_BYTES: usize = 8 << 20;

const SOURCE_PREFIX: &str = "source/";

/// Name of the `index`-th piece of the source.
pub fn source_piece(index: u32) -> String {
    format!("{SOURCE_PREFIX}{index:04}")
}

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

    /// The cover image, by its MIME type.
    pub fn cover(&self, mime: &str) -> String {
        let ext = if mime == "image/png" { "png" } else { "jpg" };
        format!("{}cover.{ext}", self.prefix)
    }
}

/// Chunks of a track that its published renditions do not use and that are not its source:
/// what an attempt that lost a race or died left behind.
pub fn unused(all: Vec<String>, published: &[String]) -> Vec<String> {
    all.into_iter()
        .filter(|name| !is_source(name) && !published.contains(name))
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
    }

    #[test]
    fn unused_keeps_the_source_and_the_published_set() {
        let all = vec![
            "source/0000".to_owned(),
            "index.m3u8".to_owned(),
            "segment000.ts".to_owned(),
            "g2-index.m3u8".to_owned(),
        ];
        let published = vec!["g2-index.m3u8".to_owned()];
        assert_eq!(unused(all, &published), ["index.m3u8", "segment000.ts"]);
    }
}
