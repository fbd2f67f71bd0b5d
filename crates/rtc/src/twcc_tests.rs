use std::collections::BTreeMap;

use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use webrtc::util::{Marshal, Unmarshal};

use super::*;

/// What a sender learns from the reports, as livekit-server reads them: per (wrapped)
/// sequence number, the latest status (`Some(arrival µs)` or `None` for lost), and how
/// often each was said to be lost.
#[derive(Default)]
struct Sender {
    status: BTreeMap<u16, Option<i64>>,
    said_lost: BTreeMap<u16, u32>,
}

impl Sender {
    fn read(&mut self, reports: &[TransportLayerCc]) {
        for report in reports {
            // Through the wire format, so a report that does not marshal fails here.
            let bytes = report.marshal().expect("a report marshals");
            assert!(bytes.len() <= 1200, "a report fits an MTU: {}", bytes.len());
            let parsed = TransportLayerCc::unmarshal(&mut bytes.clone()).unwrap();
            let mut symbols = Vec::new();
            for chunk in &parsed.packet_chunks {
                match chunk {
                    PacketStatusChunk::RunLengthChunk(c) => {
                        symbols.extend(std::iter::repeat_n(
                            c.packet_status_symbol,
                            c.run_length as usize,
                        ));
                    }
                    PacketStatusChunk::StatusVectorChunk(c) => {
                        symbols.extend(c.symbol_list.iter().copied())
                    }
                }
            }
            symbols.truncate(parsed.packet_status_count as usize);
            let mut time = i64::from(parsed.reference_time) * 64_000;
            let mut deltas = parsed.recv_deltas.iter();
            for (i, symbol) in symbols.iter().enumerate() {
                let seq = parsed.base_sequence_number.wrapping_add(i as u16);
                if *symbol == SymbolTypeTcc::PacketNotReceived {
                    self.status.insert(seq, None);
                    *self.said_lost.entry(seq).or_default() += 1;
                } else {
                    time += deltas.next().expect("a delta per received packet").delta;
                    self.status.insert(seq, Some(time));
                }
            }
        }
    }
}

fn poll(feedback: &mut TwccFeedback) -> Vec<TransportLayerCc> {
    let mut out = Vec::new();
    feedback.poll_feedback(&mut out);
    out
}

#[test]
fn arrival_times_are_reported_without_drift() {
    let mut feedback = TwccFeedback::new(1);
    let mut sender = Sender::default();
    // 3,000 packets 1.37 ms apart (a delta that does not divide by 250 µs), reported every
    // 50 ms: the error stays under half a unit however many packets a report holds.
    let mut truth = BTreeMap::new();
    for i in 0..3000u16 {
        let at = 5_000_017 + i64::from(i) * 1_370;
        feedback.record(i, at, 7);
        truth.insert(i, at);
        if i % 36 == 35 {
            sender.read(&poll(&mut feedback));
        }
    }
    sender.read(&poll(&mut feedback));
    for (seq, at) in truth {
        let reported = sender.status[&seq].expect("received");
        assert!(
            (reported - at).abs() <= 125,
            "seq {seq}: {reported} vs {at}"
        );
    }
    assert!(sender.said_lost.is_empty());
}

#[test]
fn a_loss_just_after_a_report_is_reported_in_the_next() {
    let mut feedback = TwccFeedback::new(1);
    let mut sender = Sender::default();
    for seq in 0..10 {
        feedback.record(seq, 1_000 * i64::from(seq), 7);
    }
    sender.read(&poll(&mut feedback));
    // 10 and 11 never come.
    for seq in 12..20 {
        feedback.record(seq, 1_000 * i64::from(seq), 7);
    }
    sender.read(&poll(&mut feedback));
    assert_eq!(sender.status[&10], None);
    assert_eq!(sender.status[&11], None);
    assert!(sender.status[&12].is_some());
    assert_eq!(
        sender.said_lost.keys().copied().collect::<Vec<_>>(),
        [10, 11]
    );
}

#[test]
fn a_late_packet_does_not_make_its_reported_neighbours_lost() {
    let mut feedback = TwccFeedback::new(1);
    let mut sender = Sender::default();
    for seq in [0u16, 1, 2, 4, 5, 6] {
        feedback.record(seq, 1_000 * i64::from(seq), 7);
    }
    sender.read(&poll(&mut feedback));
    assert_eq!(sender.status[&3], None, "3 is missing so far");
    // 3 arrives late, after 7 and 8.
    feedback.record(7, 7_000, 7);
    feedback.record(8, 8_000, 7);
    feedback.record(3, 9_000, 7);
    sender.read(&poll(&mut feedback));
    for seq in 0..=8u16 {
        assert!(sender.status[&seq].is_some(), "{seq} received");
    }
    assert_eq!(sender.status[&3], Some(9_000));
    assert_eq!(sender.said_lost.keys().copied().collect::<Vec<_>>(), [3]);
}

#[test]
fn sequence_numbers_wrap() {
    let mut feedback = TwccFeedback::new(1);
    let mut sender = Sender::default();
    let mut at = 0;
    for seq in (65_500u16..=65_535).chain(0..40) {
        at += 2_000;
        if seq != 3 {
            feedback.record(seq, at, 7);
        }
    }
    let reports = poll(&mut feedback);
    assert_eq!(reports[0].base_sequence_number, 65_500);
    sender.read(&reports);
    assert_eq!(sender.status.len(), 76);
    assert_eq!(sender.said_lost.keys().copied().collect::<Vec<_>>(), [3]);
}

#[test]
fn large_and_negative_deltas_and_long_gaps_are_carried() {
    let mut feedback = TwccFeedback::new(1);
    let mut sender = Sender::default();
    // Out of order in time (negative delta), 100 ms apart (large delta), 20 s apart (a
    // new packet with its own reference time).
    let arrivals = [
        (0u16, 1_000_000),
        (1, 990_000),
        (2, 1_090_000),
        (3, 21_090_000),
    ];
    for (seq, at) in arrivals {
        feedback.record(seq, at, 7);
    }
    let reports = poll(&mut feedback);
    assert_eq!(reports.len(), 2, "the 20 s gap starts a second report");
    sender.read(&reports);
    for (seq, at) in arrivals {
        assert!((sender.status[&seq].unwrap() - at).abs() <= 125, "{seq}");
    }
}

#[test]
fn hostile_sequence_numbers_stay_bounded() {
    let mut feedback = TwccFeedback::new(1);
    let mut sender = Sender::default();
    feedback.record(0, 0, 7);
    // A jump of half the sequence space, a duplicate, then one far in the past.
    feedback.record(32_000, 1_000, 7);
    feedback.record(32_000, 2_000, 7);
    feedback.record(31_000 - WINDOW as u16, 3_000, 7);
    assert_eq!(feedback.too_old, 1);
    let reports = poll(&mut feedback);
    // Only the window is reported, in packets that each fit.
    let symbols: usize = reports.iter().map(|r| r.packet_status_count as usize).sum();
    assert_eq!(symbols, WINDOW);
    sender.read(&reports);
    assert_eq!(sender.status[&32_000], Some(1_000));
    assert!(poll(&mut feedback).is_empty(), "nothing new, nothing sent");
}

#[test]
fn a_burst_is_split_into_packets_that_fit() {
    let mut feedback = TwccFeedback::new(1);
    let mut sender = Sender::default();
    // 2,000 packets with large deltas alternating sign: the worst case for size.
    for seq in 0..2000u16 {
        let at = 10_000_000 + if seq % 2 == 0 { 0 } else { 100_000 };
        feedback.record(seq, at, 7);
    }
    let reports = poll(&mut feedback);
    assert!(reports.len() >= 10, "{} reports", reports.len());
    let counts: Vec<u8> = reports.iter().map(|r| r.fb_pkt_count).collect();
    assert!(counts.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    sender.read(&reports);
    assert_eq!(sender.status.len(), 2000);
    assert!(sender.said_lost.is_empty());
}

/// The two defects of webrtc-rs's recorder that this module replaces, shown on it: a loss
/// right after a report is never reported, and a late packet makes its reported
/// neighbours lost. (If an upgrade fixes them, this test says so.)
#[test]
fn webrtc_rs_recorder_loses_losses_and_invents_others() {
    use webrtc::interceptor::twcc::Recorder;
    let read = |sender: &mut Sender, recorder: &mut Recorder| {
        let reports: Vec<TransportLayerCc> = recorder
            .build_feedback_packet()
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerCc>().cloned())
            .collect();
        sender.read(&reports);
    };
    let mut recorder = Recorder::new(1);
    let mut sender = Sender::default();
    for seq in [0u16, 1, 2, 4, 5, 6] {
        recorder.record(7, seq, 1_000 * i64::from(seq));
    }
    read(&mut sender, &mut recorder);
    // 7 and 8 lost: the next report starts at 9.
    for seq in [9u16, 10] {
        recorder.record(7, seq, 1_000 * i64::from(seq));
    }
    read(&mut sender, &mut recorder);
    assert!(!sender.said_lost.contains_key(&7), "7 was lost, never said");
    // 3 comes late, with 11: the report from 3 to 11 says 4 to 10 were lost.
    for (seq, at) in [(3u16, 11_000), (11, 11_100)] {
        recorder.record(7, seq, at);
    }
    read(&mut sender, &mut recorder);
    assert!(
        sender.said_lost.contains_key(&4),
        "4 was received, said lost"
    );
}
