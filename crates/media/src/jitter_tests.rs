use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;

fn payload(seq: u16) -> Bytes {
    Bytes::from(seq.to_be_bytes().to_vec())
}

fn seq_of(p: &Playout) -> Option<u16> {
    match p {
        Playout::Frame(b) => Some(u16::from_be_bytes([b[0], b[1]])),
        _ => None,
    }
}

/// Sends 20 ms packets with `delays[i]` of network delay each; ticks every 20 ms.
fn run(delays: &[u64], order: impl Fn(usize) -> usize) -> (Vec<Playout>, JitterBuffer) {
    let t0 = Instant::now();
    let mut arrivals: Vec<(Duration, u16)> = (0..delays.len())
        .map(|i| {
            let i = order(i);
            (
                Duration::from_millis(i as u64 * 20 + delays[i]),
                65_500u16.wrapping_add(i as u16),
            )
        })
        .collect();
    arrivals.sort();
    let mut jb = JitterBuffer::new();
    let mut out = Vec::new();
    let mut a = 0;
    let end = Duration::from_millis(delays.len() as u64 * 20 + 400);
    let mut t = Duration::ZERO;
    while t < end {
        while a < arrivals.len() && arrivals[a].0 <= t {
            let seq = arrivals[a].1;
            jb.push(
                t0 + arrivals[a].0,
                seq,
                u32::from(seq.wrapping_sub(65_500)) * 960,
                payload(seq),
            );
            a += 1;
        }
        out.push(jb.pop(t0 + t));
        t += FRAME;
    }
    (
        out.into_iter()
            .filter(|p| *p != Playout::Buffering)
            .collect(),
        jb,
    )
}

#[test]
fn plays_in_order_across_sequence_wrap_with_a_small_delay() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new();
    let mut played = Vec::new();
    for i in 0..100u16 {
        let seq = 65_500u16.wrapping_add(i);
        let now = t0 + FRAME * u32::from(i);
        jb.push(now, seq, u32::from(i) * 960, payload(seq));
        if let Playout::Frame(b) = jb.pop(now) {
            played.push(u16::from_be_bytes([b[0], b[1]]));
        }
    }
    let expected: Vec<u16> = (0..played.len() as u16)
        .map(|i| 65_500u16.wrapping_add(i))
        .collect();
    assert_eq!(played, expected);
    assert!(
        played.len() >= 98,
        "at most one frame of delay on a perfect network: {}",
        played.len()
    );
    assert_eq!(jb.target_delay(), MIN_TARGET);
}

#[test]
fn reorders_and_recovers_a_loss_from_the_next_packets_fec() {
    // 0, 2, 1 (swapped), then 4 and 5 without 3: in time order with the playout ticks.
    let mut arrivals = vec![
        (0u64, 0u16),
        (20, 2),
        (21, 1),
        (60, 4),
        (80, 5),
        (100, 6),
        (120, 7),
    ];
    arrivals.reverse();
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new();
    let mut out = Vec::new();
    for ms in (0..=240u64).step_by(10) {
        while arrivals.last().is_some_and(|a| a.0 <= ms) {
            let (at, seq) = arrivals.pop().unwrap();
            jb.push(
                t0 + Duration::from_millis(at),
                seq,
                u32::from(seq) * 960,
                payload(seq),
            );
        }
        if ms % 20 == 0 {
            let p = jb.pop(t0 + Duration::from_millis(ms));
            if p != Playout::Buffering {
                out.push(p);
            }
        }
    }
    let frames: Vec<Option<u16>> = out.iter().map(seq_of).collect();
    let first = frames.iter().position(|f| *f == Some(0)).expect("0 played");
    assert_eq!(
        &frames[first..first + 3],
        &[Some(0), Some(1), Some(2)],
        "{out:?}"
    );
    assert!(
        out.contains(&Playout::Recover { next: payload(4) }),
        "{out:?}"
    );
    let played: Vec<u16> = frames.iter().flatten().copied().collect();
    assert!(
        played.windows(2).all(|w| w[0] < w[1]),
        "in order: {played:?}"
    );
    assert!(
        !played.contains(&3) && played.ends_with(&[6, 7]),
        "{played:?}"
    );
    assert_eq!(jb.stats().recovered, 1);
}

#[test]
fn late_and_duplicate_packets_are_discarded_and_counted() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new();
    jb.push(t0, 10, 0, payload(10));
    jb.push(t0, 10, 0, payload(10));
    assert_eq!(jb.stats().discarded, 1);
    let _ = jb.pop(t0 + Duration::from_millis(100));
    jb.push(t0 + Duration::from_millis(101), 9, 0, payload(9));
    assert_eq!(jb.stats().discarded, 2, "seq 9 came after 10 was played");
}

#[test]
fn an_underrun_conceals_and_jitter_raises_the_target() {
    // Alternating 0 / 60 ms delays: heavy jitter.
    let delays: Vec<u64> = (0..200).map(|i| if i % 2 == 0 { 0 } else { 60 }).collect();
    let (out, jb) = run(&delays, |i| i);
    assert!(
        jb.target_delay() >= Duration::from_millis(60),
        "{:?}",
        jb.target_delay()
    );
    let played: Vec<u16> = out.iter().filter_map(seq_of).collect();
    assert!(
        played
            .windows(2)
            .all(|w| seq_ge(w[1], w[0]) && w[1] != w[0]),
        "never backwards"
    );
    assert!(jb.stats().played >= 180, "{:?}", jb.stats());
}

#[test]
fn a_burst_after_a_stall_is_trimmed_back_to_the_target() {
    // 40 packets arrive together after a 800 ms stall, then normal pacing.
    let delays: Vec<u64> = (0..120u64)
        .map(|i| if i < 40 { 800 - i * 20 } else { 0 })
        .collect();
    let (_, jb) = run(&delays, |i| i);
    assert!(jb.stats().trimmed > 0, "{:?}", jb.stats());
    assert!(jb.queued() <= jb.target_delay() + FRAME * 2);
}

#[test]
fn hostile_sequence_numbers_never_panic() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new();
    let mut x: u32 = 12345;
    for i in 0..10_000u32 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let seq = (x >> 8) as u16;
        jb.push(
            t0 + Duration::from_millis(u64::from(i)),
            seq,
            x,
            payload(seq),
        );
        let _ = jb.pop(t0 + Duration::from_millis(u64::from(i)));
    }
}

/// 2 s of jitter (every other packet 60 ms late), then 8 s of a perfect network, ticking
/// 5 ms after each arrival. Returns the buffer, the speech frames played (3-byte packets
/// carry their sequence number) and the longest wait of a speech frame over the last 1.4 s.
fn jitter_then_calm(packet: impl Fn(u16) -> Bytes) -> (JitterBuffer, Vec<u16>, u64) {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new();
    let delay = |i: u64| if i < 100 && i % 2 == 1 { 60 } else { 0 };
    let mut arrivals: Vec<(u64, u16)> =
        (0..500u64).map(|i| (i * 20 + delay(i), i as u16)).collect();
    arrivals.sort();
    let (mut played, mut worst_wait_at_end) = (Vec::new(), 0);
    let mut a = 0;
    for tick in 0..520u64 {
        let ms = tick * 20 + 5;
        while a < arrivals.len() && arrivals[a].0 <= ms {
            let (at, seq) = arrivals[a];
            let arrived = t0 + Duration::from_millis(at);
            jb.push(arrived, seq, u32::from(seq) * 960, packet(seq));
            a += 1;
        }
        if let Playout::Frame(p) = jb.pop(t0 + Duration::from_millis(ms))
            && p.len() == 3
        {
            let seq = u16::from_be_bytes([p[0], p[1]]);
            played.push(seq);
            if tick > 450 {
                worst_wait_at_end = worst_wait_at_end.max(ms - u64::from(seq) * 20);
            }
        }
    }
    (jb, played, worst_wait_at_end)
}

fn speech_packet(seq: u16) -> Bytes {
    let [a, b] = seq.to_be_bytes();
    Bytes::from(vec![a, b, 0])
}

/// After a jittery spell the buffer has grown; once the network is calm again the delay
/// nobody needs is shed, and only in silence (DTX packets) while there is some.
#[test]
fn delay_grown_by_jitter_is_shed_in_silence_once_the_network_calms_down() {
    // Speech for 100 ms of every 500, DTX (1 byte) in between.
    let speech = |seq: u16| seq % 25 < 5;
    let (jb, played, worst) = jitter_then_calm(|seq| {
        if speech(seq) {
            speech_packet(seq)
        } else {
            Bytes::from_static(&[0xf8])
        }
    });
    assert!(jb.stats().trimmed > 0, "{:?}", jb.stats());
    // One frame of target delay, plus the 5 ms between an arrival and the next tick.
    assert!(worst <= 25, "back to one frame of delay: {worst} ms");
    for seq in (100..480u16).filter(|s| speech(*s)) {
        assert!(played.contains(&seq), "speech frame {seq} was shed");
    }
}

/// Continuous speech (no DTX packets to shed in silence): the extra delay still goes, a
/// window later.
#[test]
fn delay_is_shed_in_continuous_speech_too() {
    let (jb, _, worst) = jitter_then_calm(speech_packet);
    assert!(jb.stats().trimmed > 0, "{:?}", jb.stats());
    assert!(worst <= 25, "back to one frame of delay: {worst} ms");
}

/// A packet that comes too late to play says the delay was short, not long: whatever was
/// about to be shed is kept.
#[test]
fn a_packet_too_late_to_play_stops_the_shedding() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new();
    for seq in 0..10u16 {
        let at = t0 + FRAME * u32::from(seq);
        jb.push(at, seq, u32::from(seq) * 960, speech_packet(seq));
        let _ = jb.pop(at);
    }
    jb.shed = 2;
    jb.shortest_wait = Some(Duration::from_millis(80));
    jb.push(t0 + FRAME * 10, 2, 2 * 960, speech_packet(2)); // its turn passed long ago
    assert_eq!(jb.stats().discarded, 1);
    assert_eq!(jb.shed, 0);
    assert_eq!(jb.shortest_wait, Some(Duration::ZERO));
}

#[test]
fn isolated_losses_play_from_fec_without_concealing_once_the_first_was_seen() {
    // A steady network losing every 10th packet: after the first loss the target holds
    // the successor, so each later loss is its FEC copy at once, not a concealed frame.
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new();
    for i in 0..500u16 {
        let at = t0 + FRAME * u32::from(i) + Duration::from_millis(1);
        if i % 10 != 5 {
            jb.push(at, i, u32::from(i) * 960, payload(i));
        }
        let _ = jb.pop(t0 + FRAME * u32::from(i) + Duration::from_millis(5));
    }
    let stats = jb.stats();
    assert!(stats.recovered >= 48, "{stats:?}");
    assert!(stats.concealed <= 2, "{stats:?}");
    assert_eq!(jb.target_delay(), MIN_TARGET + FRAME, "one frame for FEC");
}

#[test]
fn counters_over_a_window_and_the_share_played() {
    let earlier = JitterStats {
        played: 10,
        recovered: 1,
        concealed: 1,
        ..JitterStats::default()
    };
    let later = JitterStats {
        played: 80,
        recovered: 11,
        concealed: 11,
        ..JitterStats::default()
    };
    let window = later.since(&earlier);
    assert_eq!(
        (window.played, window.recovered, window.concealed),
        (70, 10, 10)
    );
    assert!(
        (window.played_share() - 80.0 / 90.0).abs() < 1e-9,
        "data and FEC, of all"
    );
    assert_eq!(earlier.since(&later).played, 0, "never below zero");
    assert_eq!(JitterStats::default().played_share(), 0.0);
}

#[test]
fn a_lost_packet_plays_from_the_copy_the_next_one_carries() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new();
    let (mut heard, mut concealed) = (Vec::new(), 0);
    for tick in 0..200u64 {
        let at = t0 + Duration::from_millis(tick * 20);
        let seq = tick as u16;
        // One packet in four lost; each carries copies of the two before it (RED).
        if tick % 4 != 1 {
            jb.push(
                at,
                seq,
                u32::from(seq) * 960,
                Bytes::from(vec![tick as u8; 3]),
            );
            for back in [2u16, 1] {
                if let Some(earlier) = seq.checked_sub(back) {
                    jb.push_copy(at, earlier, Bytes::from(vec![earlier as u8; 3]));
                }
            }
        }
        match jb.pop(at + Duration::from_millis(5)) {
            Playout::Frame(p) => heard.push(p[0]),
            Playout::Conceal => concealed += 1,
            _ => {}
        }
    }
    let stats = jb.stats();
    assert_eq!(stats.concealed, concealed);
    assert!(concealed <= 2, "{stats:?}");
    assert!(stats.from_copies >= 45, "{stats:?}");
    assert_eq!(
        stats.discarded, 0,
        "a copy of what came is no news: {stats:?}"
    );
    // In order, each frame once.
    assert!(
        heard.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{heard:?}"
    );
    // Copies alone do not start playout, nor fill a place already played.
    let mut fresh = JitterBuffer::new();
    fresh.push_copy(t0, 7, Bytes::from_static(b"x"));
    assert_eq!(fresh.pop(t0 + Duration::from_secs(1)), Playout::Buffering);
}
