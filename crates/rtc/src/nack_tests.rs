use super::*;

/// A camera's stream: a packet every 5 ms (200/s), polled every 20 ms as the task does.
const SPACING_US: i64 = 5_000;
const POLL_US: i64 = 20_000;

/// Feeds `count` packets from seq `first` (those `lost` says are lost never come), polls
/// along the way, and returns every ask with when it was made.
fn run(
    nack: &mut NackRequester,
    first: u16,
    count: u32,
    lost: impl Fn(u32) -> bool,
) -> Vec<(i64, u16)> {
    let mut asks = Vec::new();
    let mut out = Vec::new();
    let mut next_poll = 0;
    for i in 0..count {
        let at = i64::from(i) * SPACING_US;
        while next_poll <= at {
            nack.poll_nack(next_poll, &mut out);
            asks.extend(out.drain(..).map(|s| (next_poll, s)));
            next_poll += POLL_US;
        }
        if !lost(i) {
            nack.handle_packet(first.wrapping_add(i as u16), at);
        }
    }
    asks
}

#[test]
fn a_lost_packet_is_asked_for_after_the_reorder_wait_then_retried_a_bounded_number_of_times() {
    let mut nack = NackRequester::new();
    let asks = run(&mut nack, 100, 400, |i| i == 50);
    let times: Vec<i64> = asks.iter().map(|&(t, _)| t).collect();
    assert!(asks.iter().all(|&(_, s)| s == 150), "{asks:?}");
    assert_eq!(times.len(), usize::from(TRIES), "{asks:?}");
    // Packet 51 came at 255 ms: the gap is settled 8 packets later (295 ms), or 40 ms after it
    // was seen; the first poll after that asks.
    assert!((295_000..=320_000).contains(&times[0]), "{times:?}");
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= RETRY_US, "{times:?}");
    }
    assert_eq!(nack.missing(), 0, "given up after its tries");
}

#[test]
fn a_packet_that_comes_is_no_longer_asked_for() {
    let mut nack = NackRequester::new();
    let mut out = Vec::new();
    for seq in 0..20u16 {
        if seq != 5 {
            nack.handle_packet(seq, i64::from(seq) * SPACING_US);
        }
    }
    nack.poll_nack(100_000, &mut out);
    assert_eq!(out, [5]);
    nack.handle_packet(5, 120_000); // the resend
    out.clear();
    nack.poll_nack(300_000, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(nack.missing(), 0);
}

#[test]
fn packets_merely_out_of_order_are_not_asked_for() {
    let mut nack = NackRequester::new();
    let mut out = Vec::new();
    // Each group of four arrives reversed (50 ms of jitter reorders a camera like this).
    let mut at = 0;
    for group in 0..100u16 {
        for k in (0..4u16).rev() {
            nack.handle_packet(group * 4 + k, at);
            at += SPACING_US;
            if at % POLL_US == 0 {
                nack.poll_nack(at, &mut out);
            }
        }
    }
    assert!(out.is_empty(), "asked for packets that came: {out:?}");
}

#[test]
fn under_random_loss_nearly_every_gap_is_asked_for_within_the_budget() {
    let mut nack = NackRequester::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut lost = Vec::new();
    for _ in 0..2_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        lost.push(rng % 100 < 20);
    }
    let asks = run(&mut nack, 65_000, 2_000, |i| lost[i as usize]);
    let lost_count = lost.iter().filter(|&&l| l).count();
    let received = 2_000 - lost_count;
    let asked: std::collections::BTreeSet<u16> = asks.iter().map(|&(_, s)| s).collect();
    // The lost packets of the last ~50 ms are not due yet when the stream ends.
    assert!(
        asked.len() * 100 >= lost_count * 95,
        "{} of {lost_count} lost packets asked for",
        asked.len()
    );
    assert!(
        asks.len() as f64 <= received as f64 * BUDGET_SHARE,
        "{} asks for {received} packets received",
        asks.len()
    );
    // Across the wrap (65,000 + 2,000): the asks are of lost packets only.
    for (i, &l) in lost.iter().enumerate() {
        if !l {
            assert!(!asked.contains(&65_000u16.wrapping_add(i as u16)));
        }
    }
}

#[test]
fn a_capped_link_losing_most_packets_gets_no_resends() {
    let mut nack = NackRequester::new();
    // 9 packets in 10 lost, after a clean second.
    let asks = run(&mut nack, 0, 1_200, |i| i >= 200 && i % 10 != 0);
    let during_cap = asks.iter().filter(|&&(t, _)| t > 200 * SPACING_US).count();
    assert!(during_cap as f64 <= BUDGET_MAX, "{asks:?}");
    let after_onset = asks.iter().filter(|&&(t, _)| t > 300 * SPACING_US).count();
    assert_eq!(after_onset, 0, "{asks:?}");
}

#[test]
fn a_stream_that_stops_is_asked_nothing_after_the_gaps_age_out() {
    let mut nack = NackRequester::new();
    let mut out = Vec::new();
    for seq in (0..100u16).filter(|s| s % 7 != 3) {
        nack.handle_packet(seq, i64::from(seq) * SPACING_US);
    }
    let last = 99 * SPACING_US;
    let mut t = last;
    while t < last + 2_000_000 {
        nack.poll_nack(t, &mut out);
        t += POLL_US;
    }
    assert_eq!(nack.missing(), 0);
    out.clear();
    nack.poll_nack(t, &mut out);
    assert!(out.is_empty());
}

#[test]
fn hostile_sequence_numbers_keep_it_bounded() {
    let mut nack = NackRequester::new();
    let mut out = Vec::new();
    let mut seq = 0u16;
    for i in 0..10_000i64 {
        // Jumps forward by nearly half the space, back, duplicates.
        seq = match i % 4 {
            0 => seq.wrapping_add(30_000),
            1 => seq.wrapping_sub(20_000),
            2 => seq,
            _ => seq.wrapping_add(1),
        };
        nack.handle_packet(seq, i * 1_000);
        assert!(nack.missing() <= MAX_MISSING);
        if i % 20 == 0 {
            nack.poll_nack(i * 1_000, &mut out);
            assert!(out.len() <= 10_000);
        }
    }
}
