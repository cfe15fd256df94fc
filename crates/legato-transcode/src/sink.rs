//! Where an fMP4 encoder puts its output: in memory, or in a file as it goes (spilled), so
//! that a worker's memory does not grow with the track's length.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

use crate::{SpillFile, TranscodeError};

/// An encoded rendition written to a file: its bytes are `file`'s first `len`.
#[derive(Debug)]
pub struct SpilledData {
    pub file: File,
    pub len: u64,
}

/// Encoded bytes as they come out of an encoder.
pub(crate) enum Sink {
    Memory(Vec<u8>),
    File { writer: BufWriter<File>, len: u64 },
}

/// A finished encoder's bytes: in memory or spilled.
pub(crate) enum RungOut {
    Memory(Vec<u8>),
    File(SpilledData),
}

fn io_error(error: std::io::Error) -> TranscodeError {
    TranscodeError::Io(format!("cannot write an encoded rendition: {error}"))
}

impl Sink {
    pub fn new(spill: Option<SpillFile<'_>>) -> Result<Self, TranscodeError> {
        Ok(match spill {
            None => Sink::Memory(Vec::new()),
            Some(spill) => Sink::File {
                writer: BufWriter::with_capacity(256 * 1024, spill().map_err(io_error)?),
                len: 0,
            },
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), TranscodeError> {
        match self {
            Sink::Memory(data) => data.extend_from_slice(bytes),
            Sink::File { writer, len } => {
                writer.write_all(bytes).map_err(io_error)?;
                *len += bytes.len() as u64;
            }
        }
        Ok(())
    }

    /// The output so far, cut to its first `keep` bytes, with `head` written over its start.
    pub fn finish(self, keep: u64, head: &[u8]) -> Result<RungOut, TranscodeError> {
        match self {
            Sink::Memory(mut data) => {
                data.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
                if let Some(start) = data.get_mut(..head.len()) {
                    start.copy_from_slice(head);
                }
                Ok(RungOut::Memory(data))
            }
            Sink::File { writer, len } => {
                let file = writer.into_inner().map_err(|e| io_error(e.into_error()))?;
                let len = len.min(keep);
                file.set_len(len).map_err(io_error)?;
                if !head.is_empty() {
                    file.write_all_at(head, 0).map_err(io_error)?;
                }
                Ok(RungOut::File(SpilledData { file, len }))
            }
        }
    }
}

impl RungOut {
    pub fn into_memory(self) -> Result<Vec<u8>, TranscodeError> {
        match self {
            RungOut::Memory(data) => Ok(data),
            RungOut::File(_) => Err(TranscodeError::Encoder(
                "a rendition was spilled where it was wanted in memory".into(),
            )),
        }
    }

    pub fn into_file(self) -> Result<SpilledData, TranscodeError> {
        match self {
            RungOut::File(data) => Ok(data),
            RungOut::Memory(_) => Err(TranscodeError::Encoder(
                "a rendition was kept in memory where it was wanted in a file".into(),
            )),
        }
    }
}
