//! A minimal MPEG-TS (ISO 13818-1) muxer for one MPEG audio stream.
//!
//! The muxer is stateful over a whole track: the PAT, the PMT and the audio stream each keep
//! their own continuity counter from segment to segment, so a player that appends segment
//! after segment (as HLS players do) sees one unbroken transport stream.

use crate::mpeg::MpegVersion;

pub const PACKET_LEN: usize = 188;
const PACKET_HEADER_LEN: usize = 4;
const PACKET_PAYLOAD_LEN: usize = PACKET_LEN - PACKET_HEADER_LEN;
const SYNC_BYTE: u8 = 0x47;

pub const PAT_PID: u16 = 0x0000;
pub const PMT_PID: u16 = 0x1000;
pub const AUDIO_PID: u16 = 0x0100;
pub const PROGRAM_NUMBER: u16 = 1;
const TRANSPORT_STREAM_ID: u16 = 1;
/// PES stream_id of the first MPEG audio stream.
pub const AUDIO_STREAM_ID: u8 = 0xC0;

/// The PES header as written here: start code, stream id, length, flags and a PTS.
pub const PES_HEADER_LEN: usize = 14;
/// Bytes counted by PES_packet_length besides the payload: flags (2), header length (1), PTS (5).
const PES_LENGTH_OVERHEAD: usize = 8;
/// The largest payload whose PES_packet_length still fits 16 bits.
pub const MAX_PES_PAYLOAD_LEN: usize = u16::MAX as usize - PES_LENGTH_OVERHEAD;
/// An adaptation field carrying a PCR: length, flags and the 6-byte PCR.
const PCR_ADAPTATION_LEN: usize = 8;

/// Timestamps wrap at 33 bits.
const TIMESTAMP_MASK: u64 = (1 << 33) - 1;

/// The PMT stream_type of the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// ISO 11172-3 (MPEG-1) audio.
    Mpeg1Audio,
    /// ISO 13818-3 (MPEG-2) audio, used for the MPEG-2 and MPEG-2.5 sample rates.
    Mpeg2Audio,
}

impl StreamType {
    pub fn for_version(version: MpegVersion) -> Self {
        match version {
            MpegVersion::Mpeg1 => Self::Mpeg1Audio,
            MpegVersion::Mpeg2 | MpegVersion::Mpeg25 => Self::Mpeg2Audio,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Self::Mpeg1Audio => 0x03,
            Self::Mpeg2Audio => 0x04,
        }
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial value all ones, no reflection, no final
/// xor), the checksum closing every PSI section.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &byte| {
        (0..8).fold(crc ^ (u32::from(byte) << 24), |crc, _| {
            if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            }
        })
    })
}

/// Number of TS packets a PES with `payload_len` payload bytes takes.
pub fn pes_packet_count(payload_len: usize) -> usize {
    let first_capacity = PACKET_PAYLOAD_LEN - PCR_ADAPTATION_LEN;
    let total = PES_HEADER_LEN + payload_len;
    1 + total
        .saturating_sub(first_capacity)
        .div_ceil(PACKET_PAYLOAD_LEN)
}

/// Writes TS packets for one program with one audio stream.
#[derive(Debug, Clone, Default)]
pub struct TsMuxer {
    pat_counter: u8,
    pmt_counter: u8,
    audio_counter: u8,
    pmt_version: u8,
    stream_type: Option<StreamType>,
    pes: Vec<u8>,
}

impl TsMuxer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a PAT and a PMT, as every segment starts with (each segment must be decodable
    /// on its own).
    pub fn write_tables(&mut self, out: &mut Vec<u8>, stream_type: StreamType) {
        self.note_stream_type(stream_type);
        let pat = pat_section();
        let pmt = pmt_section(stream_type, self.pmt_version);
        let pat_counter = next_counter(&mut self.pat_counter);
        write_section_packet(out, PAT_PID, pat_counter, &pat);
        let pmt_counter = next_counter(&mut self.pmt_counter);
        write_section_packet(out, PMT_PID, pmt_counter, &pmt);
    }

    /// Advances the state exactly as [`write_tables`](Self::write_tables) would, without
    /// writing: lets a segment be muxed on its own, given the segments before it.
    pub fn skip_tables(&mut self, stream_type: StreamType) {
        self.note_stream_type(stream_type);
        next_counter(&mut self.pat_counter);
        next_counter(&mut self.pmt_counter);
    }

    /// Writes one PES packet holding `payload`, presented at `pts` (90 kHz), with a PCR of
    /// `pcr` (90 kHz) and the random access indicator on its first TS packet. The last TS
    /// packet is filled up with adaptation-field stuffing.
    ///
    /// `payload` should be at most [`MAX_PES_PAYLOAD_LEN`] bytes; a longer one is written
    /// with a PES_packet_length of 0 ("unbounded").
    pub fn write_pes(&mut self, out: &mut Vec<u8>, pts: u64, pcr: u64, payload: &[u8]) {
        let mut pes = std::mem::take(&mut self.pes);
        pes.clear();
        write_pes_header(&mut pes, pts, payload.len());
        pes.extend_from_slice(payload);

        let mut rest = pes.as_slice();
        let mut first = true;
        while first || !rest.is_empty() {
            let reserved = if first { PCR_ADAPTATION_LEN } else { 0 };
            let take = rest.len().min(PACKET_PAYLOAD_LEN - reserved);
            let (chunk, tail) = rest.split_at(take);
            let adaptation_len = PACKET_PAYLOAD_LEN - take;
            let counter = next_counter(&mut self.audio_counter);

            out.extend_from_slice(&packet_header(
                AUDIO_PID,
                first,
                adaptation_len > 0,
                counter,
            ));
            if adaptation_len > 0 {
                write_adaptation_field(out, adaptation_len, first.then_some(pcr));
            }
            out.extend_from_slice(chunk);
            rest = tail;
            first = false;
        }
        self.pes = pes;
    }

    /// Advances the state exactly as [`write_pes`](Self::write_pes) would for a payload of
    /// `payload_len` bytes, without writing.
    pub fn skip_pes(&mut self, payload_len: usize) {
        let packets = pes_packet_count(payload_len) % 16;
        self.audio_counter = (self.audio_counter + packets as u8) & 0x0F;
    }

    fn note_stream_type(&mut self, stream_type: StreamType) {
        // A PMT that changes content must change version, or demuxers keep the old one.
        if self
            .stream_type
            .is_some_and(|previous| previous != stream_type)
        {
            self.pmt_version = (self.pmt_version + 1) & 0x1F;
        }
        self.stream_type = Some(stream_type);
    }
}

/// Returns the counter's value and advances it (4 bits, wrapping).
fn next_counter(counter: &mut u8) -> u8 {
    let value = *counter;
    *counter = (value + 1) & 0x0F;
    value
}

fn packet_header(pid: u16, unit_start: bool, adaptation: bool, counter: u8) -> [u8; 4] {
    let [pid_high, pid_low] = pid.to_be_bytes();
    let control = if adaptation { 0x30 } else { 0x10 };
    [
        SYNC_BYTE,
        (u8::from(unit_start) << 6) | (pid_high & 0x1F),
        pid_low,
        control | (counter & 0x0F),
    ]
}

/// Writes an adaptation field of `total_len` bytes (its length byte included), with a PCR
/// and the random access indicator when `pcr` is given, and stuffing bytes after that.
fn write_adaptation_field(out: &mut Vec<u8>, total_len: usize, pcr: Option<u64>) {
    // The field's length byte counts the bytes after it: at most 183, so it fits.
    out.push(u8::try_from(total_len.saturating_sub(1)).unwrap_or(u8::MAX));
    if total_len == 1 {
        return;
    }
    let mut used = 2;
    match pcr {
        Some(pcr) => {
            out.push(0x50); // random_access_indicator | PCR_flag
            out.extend_from_slice(&encode_pcr(pcr));
            used += 6;
        }
        None => out.push(0x00),
    }
    out.resize(out.len() + total_len.saturating_sub(used), 0xFF);
}

/// The 6-byte PCR field: a 33-bit 90 kHz base, 6 reserved bits, a 9-bit 27 MHz extension (0).
fn encode_pcr(pcr: u64) -> [u8; 6] {
    let field = ((pcr & TIMESTAMP_MASK) << 15) | (0x3F << 9);
    let [_, _, b0, b1, b2, b3, b4, b5] = field.to_be_bytes();
    [b0, b1, b2, b3, b4, b5]
}

/// The 5-byte PTS field with its '0010' prefix and marker bits.
fn encode_pts(pts: u64) -> [u8; 5] {
    let pts = pts & TIMESTAMP_MASK;
    [
        0x21 | ((pts >> 29) & 0x0E) as u8,
        (pts >> 22) as u8,
        0x01 | ((pts >> 14) & 0xFE) as u8,
        (pts >> 7) as u8,
        0x01 | ((pts << 1) & 0xFE) as u8,
    ]
}

fn write_pes_header(out: &mut Vec<u8>, pts: u64, payload_len: usize) {
    let packet_len = u16::try_from(payload_len + PES_LENGTH_OVERHEAD).unwrap_or(0);
    out.extend_from_slice(&[0x00, 0x00, 0x01, AUDIO_STREAM_ID]);
    out.extend_from_slice(&packet_len.to_be_bytes());
    // '10', not scrambled, data_alignment_indicator (every PES starts with a frame header).
    out.push(0x84);
    out.push(0x80); // PTS only
    out.push(5); // PES_header_data_length
    out.extend_from_slice(&encode_pts(pts));
}

/// A PSI section: the common long-form header, `body`, and the CRC.
fn psi_section(table_id: u8, table_id_extension: u16, version: u8, body: &[u8]) -> Vec<u8> {
    // section_length counts from after itself: 5 header bytes, the body and the CRC.
    let section_len = (5 + body.len() + 4) as u16;
    let mut section = vec![table_id];
    // section_syntax_indicator, '0', two reserved bits, then the 12-bit length.
    section.extend_from_slice(&(0xB000 | (section_len & 0x0FFF)).to_be_bytes());
    section.extend_from_slice(&table_id_extension.to_be_bytes());
    section.push(0xC1 | ((version & 0x1F) << 1)); // reserved, version, current_next_indicator
    section.push(0); // section_number
    section.push(0); // last_section_number
    section.extend_from_slice(body);
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

fn pat_section() -> Vec<u8> {
    let mut body = PROGRAM_NUMBER.to_be_bytes().to_vec();
    body.extend_from_slice(&(0xE000 | PMT_PID).to_be_bytes());
    psi_section(0x00, TRANSPORT_STREAM_ID, 0, &body)
}

fn pmt_section(stream_type: StreamType, version: u8) -> Vec<u8> {
    let mut body = (0xE000 | AUDIO_PID).to_be_bytes().to_vec(); // PCR_PID
    body.extend_from_slice(&0xF000u16.to_be_bytes()); // program_info_length 0
    body.push(stream_type.code());
    body.extend_from_slice(&(0xE000 | AUDIO_PID).to_be_bytes());
    body.extend_from_slice(&0xF000u16.to_be_bytes()); // ES_info_length 0
    psi_section(0x02, PROGRAM_NUMBER, version, &body)
}

/// One packet holding a whole section (ours are a few dozen bytes), padded with 0xFF as
/// PSI requires.
fn write_section_packet(out: &mut Vec<u8>, pid: u16, counter: u8, section: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&packet_header(pid, true, false, counter));
    out.push(0); // pointer_field
    out.extend_from_slice(section);
    out.resize(start + PACKET_LEN, 0xFF);
}

#[cfg(test)]
pub(crate) mod demux;

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::demux::{Demuxed, demux};
    use super::*;

    #[test]
    fn crc_matches_the_reference_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        // A section with its CRC appended checks to 0.
        let pat = pat_section();
        assert_eq!(crc32_mpeg2(&pat), 0);
    }

    #[test]
    fn timestamps_round_trip() {
        for value in [0, 1, 126_000, 0x1_2345_6789, (1 << 33) - 1] {
            assert_eq!(demux::decode_pts(&encode_pts(value)), value);
            assert_eq!(demux::decode_pcr(&encode_pcr(value)), value);
        }
    }

    #[test]
    fn tables_and_pes_parse_back() {
        let mut muxer = TsMuxer::new();
        let mut out = Vec::new();
        muxer.write_tables(&mut out, StreamType::Mpeg1Audio);
        let payloads: Vec<Vec<u8>> = [0usize, 1, 100, 168, 169, 170, 176, 177, 360, 361, 5000]
            .iter()
            .map(|&len| (0..len).map(|i| (i * 7 % 251) as u8).collect())
            .collect();
        for (i, payload) in payloads.iter().enumerate() {
            let before = out.len();
            muxer.write_pes(
                &mut out,
                126_000 + i as u64 * 1000,
                i as u64 * 1000,
                payload,
            );
            let packets = (out.len() - before) / PACKET_LEN;
            assert_eq!(
                packets,
                pes_packet_count(payload.len()),
                "len {}",
                payload.len()
            );
        }
        let Demuxed {
            pes, stream_types, ..
        } = demux(&out).unwrap();
        assert_eq!(stream_types, [0x03]);
        assert_eq!(pes.len(), payloads.len());
        for (i, (packet, payload)) in pes.iter().zip(&payloads).enumerate() {
            assert_eq!(&packet.payload, payload);
            assert_eq!(packet.pts, 126_000 + i as u64 * 1000);
            assert_eq!(packet.pcr, i as u64 * 1000);
        }
    }

    #[test]
    fn counters_continue_and_skipping_matches_writing() {
        let mut written = TsMuxer::new();
        let mut skipped = TsMuxer::new();
        let mut out = Vec::new();
        for round in 0..20 {
            let stream_type = if round < 10 {
                StreamType::Mpeg1Audio
            } else {
                StreamType::Mpeg2Audio
            };
            written.write_tables(&mut out, stream_type);
            skipped.skip_tables(stream_type);
            let payload = vec![0u8; round * 397];
            written.write_pes(&mut out, 0, 0, &payload);
            skipped.skip_pes(payload.len());
        }
        assert_eq!(written.audio_counter, skipped.audio_counter);
        assert_eq!(written.pat_counter, skipped.pat_counter);
        assert_eq!(written.pmt_version, 1);
        assert_eq!(written.pmt_version, skipped.pmt_version);
        // The demuxer checks every counter step.
        let demuxed = demux(&out).unwrap();
        assert_eq!(demuxed.stream_types.first(), Some(&0x03));
        assert_eq!(demuxed.stream_types.last(), Some(&0x04));
    }
}
