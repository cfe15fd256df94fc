//! Reading a track's stored source back, in file order, for the download and the worker.
//!
//! A source is stored in one of two ways (see [`crate::layout`]): whole, in pieces of at most
//! [`SOURCE_PIECE_BYTES`](crate::layout::SOURCE_PIECE_BYTES); or, for an MP3, as the frames
//! of its `original` segments plus a remainder chunk, put back together here one segment at
//! a time (see [`legato_media::original`]). Either way only one piece or segment is in memory
//! at once.

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use legato_media::original::{Rebuilder, Remainder, ts_audio_payload};
use legato_store::{DynStore, SourceInfo, TrackId};

use crate::error::IngestError;
use crate::layout;

/// The source's bytes from (at most) offset `from` on: the blocks, and the offset of the
/// first block's first byte (≤ `from`; pieces are read from the one holding `from`, a
/// rebuilt MP3 from its start).
pub fn blocks(
    store: DynStore,
    id: TrackId,
    source: &SourceInfo,
    from: u64,
) -> (u64, BoxStream<'static, Result<Bytes, IngestError>>) {
    match source.remainder.clone() {
        None => {
            let piece = layout::SOURCE_PIECE_BYTES as u64;
            let first = u32::try_from(from / piece).unwrap_or(u32::MAX);
            let pieces = stream::iter(first..source.pieces).then(move |index| {
                let store = store.clone();
                async move {
                    Ok(store
                        .get_stored_chunk(&id, &layout::source_piece(index))
                        .await?)
                }
            });
            (u64::from(first) * piece, pieces.boxed())
        }
        Some(remainder) => (0, rebuilt(store, id, remainder).boxed()),
    }
}

/// Where the rebuilding of an MP3 is.
enum Rebuild {
    /// The remainder chunk is still to be read.
    Start(String),
    /// Segment `next` is the next to read.
    Segments {
        rebuilder: Rebuilder,
        next: usize,
    },
    Done,
}

/// An MP3 source rebuilt from its remainder and its `original` segments.
fn rebuilt(
    store: DynStore,
    id: TrackId,
    remainder: String,
) -> impl futures_util::Stream<Item = Result<Bytes, IngestError>> {
    stream::try_unfold(Rebuild::Start(remainder), move |state| {
        let store = store.clone();
        async move {
            let mut out = Vec::new();
            let next = match state {
                Rebuild::Start(name) => {
                    let stored = store.get_stored_chunk(&id, &name).await?;
                    let remainder = Remainder::from_bytes(&stored).map_err(damaged)?;
                    Rebuild::Segments {
                        rebuilder: remainder.into_rebuilder(),
                        next: 0,
                    }
                }
                Rebuild::Segments {
                    mut rebuilder,
                    next,
                } => match rebuilder.segments().get(next).cloned() {
                    Some(name) => {
                        let segment = store.get_stored_chunk(&id, &name).await?;
                        let mut audio = Vec::with_capacity(segment.len());
                        ts_audio_payload(&segment, &mut audio).map_err(damaged)?;
                        rebuilder.push(&audio, &mut out).map_err(damaged)?;
                        Rebuild::Segments {
                            rebuilder,
                            next: next + 1,
                        }
                    }
                    None => {
                        rebuilder.finish(&mut out).map_err(damaged)?;
                        Rebuild::Done
                    }
                },
                Rebuild::Done => return Ok(None),
            };
            Ok(Some((Bytes::from(out), next)))
        }
    })
}

fn damaged(err: legato_media::original::RebuildError) -> IngestError {
    IngestError::Internal(err.to_string())
}
