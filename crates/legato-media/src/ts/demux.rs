//! A small, strict MPEG-TS demuxer for checking the muxer's output in tests.

use super::{AUDIO_PID, AUDIO_STREAM_ID, PACKET_LEN, PAT_PID, PMT_PID, crc32_mpeg2};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PesPacket {
    pub pts: u64,
    pub pcr: u64,
    pub payload: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Demuxed {
    pub pes: Vec<PesPacket>,
    /// The audio stream_type of every PMT, in order.
    pub stream_types: Vec<u8>,
    /// The PID of every packet, in order.
    pub pids: Vec<u16>,
    /// Bytes of adaptation-field stuffing in audio packets.
    pub stuffing_bytes: usize,
}

pub fn decode_pts(bytes: &[u8]) -> u64 {
    let b = |i: usize| u64::from(bytes[i]);
    ((b(0) >> 1) & 0x07) << 30 | b(1) << 22 | (b(2) >> 1) << 15 | b(3) << 7 | b(4) >> 1
}

pub fn decode_pcr(bytes: &[u8]) -> u64 {
    let b = |i: usize| u64::from(bytes[i]);
    b(0) << 25 | b(1) << 17 | b(2) << 9 | b(3) << 1 | b(4) >> 7
}

fn check_section(payload: &[u8], table_id: u8) -> Result<Vec<u8>, String> {
    if payload[0] != 0 {
        return Err("pointer_field is not 0".into());
    }
    let section = &payload[1..];
    if section[0] != table_id {
        return Err(format!("table_id {} instead of {table_id}", section[0]));
    }
    let len = usize::from(u16::from_be_bytes([section[1], section[2]]) & 0x0FFF);
    let section = &section[..3 + len];
    if crc32_mpeg2(section) != 0 {
        return Err(format!("bad CRC on table {table_id}"));
    }
    if payload[1 + 3 + len..].iter().any(|&b| b != 0xFF) {
        return Err("PSI packet not padded with 0xFF".into());
    }
    Ok(section.to_vec())
}

/// Demuxes `ts`, checking packet structure, tables, CRCs, continuity counters and PES
/// lengths, and returns the PES packets of the audio PID.
pub fn demux(ts: &[u8]) -> Result<Demuxed, String> {
    if ts.len() % PACKET_LEN != 0 {
        return Err(format!(
            "{} bytes is not a whole number of packets",
            ts.len()
        ));
    }
    let mut out = Demuxed::default();
    let mut counters: [Option<u8>; 0x2000] = [None; 0x2000];
    let mut current: Option<(usize, PesPacket)> = None; // (declared total length, packet)

    fn finish(current: &mut Option<(usize, PesPacket)>, out: &mut Demuxed) -> Result<(), String> {
        if let Some((declared, pes)) = current.take() {
            if pes.payload.len() != declared {
                return Err(format!(
                    "PES of {} bytes declared {declared}",
                    pes.payload.len()
                ));
            }
            out.pes.push(pes);
        }
        Ok(())
    }

    for (index, packet) in ts.chunks(PACKET_LEN).enumerate() {
        if packet[0] != 0x47 {
            return Err(format!("packet {index} has no sync byte"));
        }
        let unit_start = packet[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([packet[1] & 0x1F, packet[2]]);
        let control = (packet[3] >> 4) & 0x3;
        let counter = packet[3] & 0x0F;
        out.pids.push(pid);
        if control & 0x1 == 0 {
            return Err(format!("packet {index} carries no payload"));
        }
        let expected = counters[usize::from(pid)].map(|c| (c + 1) & 0x0F);
        if expected.is_some_and(|e| e != counter) {
            return Err(format!(
                "packet {index} PID {pid}: counter {counter}, expected {expected:?}"
            ));
        }
        counters[usize::from(pid)] = Some(counter);

        let mut payload = &packet[4..];
        let mut pcr = None;
        let mut random_access = false;
        if control & 0x2 != 0 {
            let len = usize::from(payload[0]);
            let field = &payload[1..1 + len];
            payload = &payload[1 + len..];
            if let Some((&flags, rest)) = field.split_first() {
                random_access = flags & 0x40 != 0;
                let stuffing = if flags & 0x10 != 0 {
                    pcr = Some(decode_pcr(&rest[..6]));
                    &rest[6..]
                } else {
                    rest
                };
                if stuffing.iter().any(|&b| b != 0xFF) {
                    return Err(format!("packet {index}: adaptation stuffing is not 0xFF"));
                }
                if pid == AUDIO_PID {
                    out.stuffing_bytes += stuffing.len();
                }
            }
        }

        match pid {
            PAT_PID => {
                let section = check_section(payload, 0x00)?;
                if section[8..12] != [0x00, 0x01, 0xF0, 0x00] {
                    return Err("PAT does not map program 1 to PID 0x1000".into());
                }
            }
            PMT_PID => {
                let section = check_section(payload, 0x02)?;
                if section[8..10] != [0xE1, 0x00] {
                    return Err("PCR PID is not the audio PID".into());
                }
                if section[13..15] != [0xE1, 0x00] {
                    return Err("the stream is not on the audio PID".into());
                }
                out.stream_types.push(section[12]);
            }
            AUDIO_PID => {
                if unit_start {
                    finish(&mut current, &mut out)?;
                    if payload[..4] != [0, 0, 1, AUDIO_STREAM_ID] {
                        return Err(format!("packet {index}: no PES start code"));
                    }
                    let Some(pcr) = pcr else {
                        return Err(format!("packet {index}: PES starts without a PCR"));
                    };
                    if !random_access {
                        return Err(format!("packet {index}: no random_access_indicator"));
                    }
                    let declared = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
                    if payload[7] != 0x80 || payload[8] != 5 {
                        return Err("PES header does not hold exactly a PTS".into());
                    }
                    let pts = decode_pts(&payload[9..14]);
                    current = Some((
                        declared - 8,
                        PesPacket {
                            pts,
                            pcr,
                            payload: payload[14..].to_vec(),
                        },
                    ));
                } else {
                    let Some((_, pes)) = current.as_mut() else {
                        return Err(format!("packet {index}: audio data outside a PES"));
                    };
                    pes.payload.extend_from_slice(payload);
                }
            }
            other => return Err(format!("unexpected PID {other:#x}")),
        }
    }
    finish(&mut current, &mut out)?;
    Ok(out)
}
