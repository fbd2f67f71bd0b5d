//! Data packets from peers (chat streams, legacy chat, missed-chat requests): any bytes,
//! interleaved with time: typed errors, bounded buffers, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (mut s, mut now) = common::joined();
    for (kind, delay, chunk) in common::records(data) {
        now += delay;
        if kind % 16 == 0 {
            let _ = s.send_chat(now, "00000000-0000-4000-8000-000000000000", "réponse");
        }
        let _ = s.handle_data(now, chunk);
        s.handle_timeout(now);
        common::drain(&mut s, now);
    }
});
