//! The audio jitter buffer's input: RTP sequence numbers, timestamps and payloads (and RED
//! copies) as a peer sends them (wrapping, jumping, repeating), and pulls at any time: never a panic,
//! and what it holds stays bounded.
#![no_main]

use std::time::{Duration, Instant};

use estrade_media::JitterBuffer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut jitter = JitterBuffer::new();
    let mut now = Instant::now();
    for record in data.chunks(8) {
        if record.len() < 8 {
            break;
        }
        now += Duration::from_millis(u64::from(record[0] % 64));
        if record[1] % 4 == 0 {
            let _ = jitter.pop(now);
            continue;
        }
        let seq = u16::from_le_bytes([record[2], record[3]]);
        let ts = u32::from_le_bytes([record[4], record[5], record[6], record[7]]);
        let payload = bytes::Bytes::copy_from_slice(&record[..usize::from(record[1] % 8)]);
        // A RED copy of an earlier frame, or the packet itself.
        if record[1] % 4 == 1 {
            jitter.push_copy(now, seq, payload);
        } else {
            jitter.push(now, seq, ts, payload);
        }
        assert!(
            jitter.queued() <= Duration::from_secs(10),
            "{:?} queued",
            jitter.queued()
        );
    }
});
