//! Redundant audio (RFC 2198, "RED"), as LiveKit sends it: each packet carries the
//! current Opus frame and copies of up to two before it, so a lost packet's frame usually
//! arrives in the next one. Browsers and libwebrtc peers (LiveKit's SDKs) publish it, and
//! livekit-server forwards it to subscribers that negotiate it, as ours does. (We publish
//! plain Opus: webrtc-rs has no RED encoder.) Parsing only: a payload is split into
//! borrowed slices, nothing is copied.

use bytes::Bytes;

/// The payload type RED has on LiveKit's connections (livekit-server fixes it, as
/// libwebrtc does by default).
pub(crate) const RED_PAYLOAD_TYPE: u8 = 63;
/// Copies kept from one packet: LiveKit sends at most two.
pub const MAX_EARLIER: usize = 2;
/// An Opus frame of 20 ms, in RTP ticks.
const FRAME_TICKS: u32 = 960;

/// A copy of an earlier frame carried in a RED packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierFrame {
    pub sequence: u16,
    pub timestamp: u32,
    pub payload: Bytes,
}

/// Why a RED payload could not be used (the packet is then skipped, and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedError {
    #[error("a RED header runs past the end of the payload")]
    TruncatedHeader,
    #[error("a RED block's length runs past the end of the payload")]
    TruncatedBlock,
    #[error("a RED payload with more than {MAX_BLOCKS} blocks")]
    TooManyBlocks,
}

/// Blocks accepted in one payload (headers of 4 bytes: a hostile packet of 1,200 bytes
/// could announce 300).
const MAX_BLOCKS: usize = 8;

/// The primary frame of a RED payload, and the copies of earlier ones whose sequence
/// number is known (newest last). RED gives a copy's timestamp offset, not its sequence
/// number: two copies are the two packets before (LiveKit copies only packets at most two
/// sequence numbers back); one copy is the packet before only if it is one frame older,
/// else (a gap of silence, or the one before was missing at the server) it is left out
/// rather than guessed.
pub fn split(
    payload: &Bytes,
    sequence: u16,
    timestamp: u32,
) -> Result<(Bytes, [Option<EarlierFrame>; MAX_EARLIER]), RedError> {
    // Headers: 4 bytes while the F bit is set, then one byte for the primary.
    let mut blocks: [(u32, usize); MAX_BLOCKS] = [(0, 0); MAX_BLOCKS];
    let mut count = 0;
    let mut at = 0;
    loop {
        let first = *payload.get(at).ok_or(RedError::TruncatedHeader)?;
        if first & 0x80 == 0 {
            at += 1;
            break;
        }
        let header = payload.get(at..at + 4).ok_or(RedError::TruncatedHeader)?;
        if count == MAX_BLOCKS {
            return Err(RedError::TooManyBlocks);
        }
        let offset = (u32::from(header[1]) << 6) | (u32::from(header[2]) >> 2);
        let length = (usize::from(header[2] & 0x03) << 8) | usize::from(header[3]);
        blocks[count] = (offset, length);
        count += 1;
        at += 4;
    }
    let mut earlier = [None, None];
    let copies = &blocks[..count];
    let mut data = at;
    let mut slices = [(0usize, 0usize); MAX_BLOCKS];
    for (i, &(_, length)) in copies.iter().enumerate() {
        let end = data.checked_add(length).ok_or(RedError::TruncatedBlock)?;
        if end > payload.len() {
            return Err(RedError::TruncatedBlock);
        }
        slices[i] = (data, end);
        data = end;
    }
    let primary = payload.slice(data..);
    // The copies we can place, newest last.
    let known = copies.len().min(MAX_EARLIER);
    let newest = &copies[copies.len() - known..];
    let places: &[u16] = match newest {
        [_, _] => &[2, 1],
        [(offset, _)] if *offset == FRAME_TICKS => &[1],
        _ => &[],
    };
    for (k, (&back, &(offset, _))) in places.iter().zip(newest).enumerate() {
        let (start, end) = slices[copies.len() - known + k];
        if end > start {
            earlier[k] = Some(EarlierFrame {
                sequence: sequence.wrapping_sub(back),
                timestamp: timestamp.wrapping_sub(offset),
                payload: payload.slice(start..end),
            });
        }
    }
    Ok((primary, earlier))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RED payload of `copies` (offset, data) then `primary`, Opus PT 111.
    fn red(copies: &[(u32, &[u8])], primary: &[u8]) -> Bytes {
        let mut out = Vec::new();
        for (offset, data) in copies {
            out.push(0x80 | 111);
            out.push((offset >> 6) as u8);
            out.push((((offset & 0x3F) << 2) as u8) | ((data.len() >> 8) as u8 & 0x03));
            out.push(data.len() as u8);
        }
        out.push(111);
        for (_, data) in copies {
            out.extend_from_slice(data);
        }
        out.extend_from_slice(primary);
        Bytes::from(out)
    }

    #[test]
    fn two_copies_are_the_two_packets_before() {
        let payload = red(&[(1920, b"two back"), (960, b"one back")], b"now");
        let (primary, earlier) = split(&payload, 1, 10_000).unwrap();
        assert_eq!(&primary[..], b"now");
        let [a, b] = earlier;
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            (a.sequence, a.timestamp, &a.payload[..]),
            (65_535, 8_080, &b"two back"[..])
        );
        assert_eq!(
            (b.sequence, b.timestamp, &b.payload[..]),
            (0, 9_040, &b"one back"[..])
        );
    }

    #[test]
    fn one_copy_is_placed_only_when_it_is_one_frame_back() {
        let payload = red(&[(960, b"one back")], b"now");
        let (_, earlier) = split(&payload, 100, 50_000).unwrap();
        assert_eq!(earlier[0].as_ref().unwrap().sequence, 99);
        assert!(earlier[1].is_none());
        // Two frames back: the packet before was missing at the server, or silence.
        let payload = red(&[(1920, b"two back")], b"now");
        let (primary, earlier) = split(&payload, 100, 50_000).unwrap();
        assert_eq!(&primary[..], b"now");
        assert_eq!(earlier, [None, None]);
        // No copy at all (LiveKit's first packet, or a primary too big to repeat).
        let (primary, earlier) = split(&red(&[], b"now"), 100, 50_000).unwrap();
        assert_eq!((&primary[..], earlier), (&b"now"[..], [None, None]));
    }

    #[test]
    fn broken_payloads_are_errors() {
        assert_eq!(split(&Bytes::new(), 1, 1), Err(RedError::TruncatedHeader));
        assert_eq!(
            split(&Bytes::from_static(&[0x80 | 111, 0, 0]), 1, 1),
            Err(RedError::TruncatedHeader)
        );
        // A block longer than what follows.
        let mut bad = red(&[(960, b"one back")], b"").to_vec();
        bad.truncate(bad.len() - 2);
        assert_eq!(
            split(&Bytes::from(bad), 1, 1),
            Err(RedError::TruncatedBlock)
        );
        // Nine headers.
        let many: Vec<(u32, &[u8])> = (0..9).map(|_| (960, &b"x"[..])).collect();
        assert_eq!(split(&red(&many, b"p"), 1, 1), Err(RedError::TooManyBlocks));
        // Eight headers are fine; only the two newest copies are kept.
        let (primary, earlier) = split(&red(&many[..8], b"p"), 10, 100_000).unwrap();
        assert_eq!(&primary[..], b"p");
        assert_eq!(earlier[1].as_ref().unwrap().sequence, 9);
    }
}
