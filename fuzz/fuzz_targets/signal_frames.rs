//! Signal frames from a server: any bytes, in any order, at any time, for a joined
//! session (and through reconnects): typed errors, never a panic or a timer that spins.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (mut s, mut now) = common::joined();
    for (kind, delay, chunk) in common::records(data) {
        now += delay;
        match kind % 8 {
            0 => s.handle_signal_lost(now, "fuzz".into()),
            1 => s.handle_media_interrupted(now, "fuzz".into()),
            2 => s.handle_transport_ready(now),
            _ => {
                let _ = s.handle_frame(now, chunk);
            }
        }
        s.handle_timeout(now);
        common::drain(&mut s, now);
    }
});
