//! Transport-wide congestion control feedback for the server's send-side estimate of our
//! downlink (draft-holmer-rmcat-transport-wide-cc-extensions-01), sans-IO.
//!
//! Why not webrtc-rs's own (interceptor 0.17, `twcc::Recorder`): each of its reports covers
//! only the packets that arrived since the last one, from the lowest sequence number among
//! them. So (1) packets lost just after one report's last packet are in no report at all,
//! and livekit-server never counts them as lost; (2) a packet that arrives after its
//! neighbours were reported starts a report that marks those neighbours "not received",
//! and the server counts them lost (under jitter, that is a storm of phantom loss); (3) each
//! arrival delta is truncated to 250 µs from the true time rather than from the time already
//! reported, so within a report the errors add up (a drift the delay estimator reads as a
//! draining queue). Here, as libwebrtc's receiver does: each report starts after the last
//! one reported, arrival times are kept for a window so a late packet re-reports its range
//! consistently, and deltas are rounded from the reported time.

use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
    SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc,
};

/// Packets whose arrival is remembered, by transport-wide sequence number: a late packet
/// older than this is too late to matter (at 2,000 packets/s, 2 s).
pub(crate) const WINDOW: usize = 4096;
/// Status symbols per feedback packet, and arrival deltas per packet (2 bytes each at
/// most): keeps each feedback far under an MTU.
const MAX_SYMBOLS: usize = 1024;
const MAX_DELTAS: usize = 200;
/// A delta's unit, and the reference time's (µs).
const DELTA_UNIT_US: i64 = 250;
const REFERENCE_UNIT_US: i64 = 64_000;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// The unwrapped sequence number this slot holds (slots are reused modulo `WINDOW`).
    seq: i64,
    arrival_us: i64,
    received: bool,
}

/// What one receiver has seen, and what it has reported.
pub(crate) struct TwccFeedback {
    slots: Box<[Slot]>,
    /// Highest unwrapped sequence number received (`None` before the first packet).
    highest: Option<i64>,
    /// The first sequence number the next report covers.
    next_report: i64,
    sender_ssrc: u32,
    /// The stream the newest packet came on: livekit-server hands a feedback to the
    /// down track whose SSRC it names.
    media_ssrc: u32,
    fb_count: u8,
    /// Reused between reports.
    symbols: Vec<SymbolTypeTcc>,
    /// Packets arriving after their window had passed (counted, not reported).
    pub(crate) too_old: u64,
}

impl TwccFeedback {
    pub(crate) fn new(sender_ssrc: u32) -> Self {
        Self {
            slots: vec![Slot::default(); WINDOW].into_boxed_slice(),
            highest: None,
            next_report: 0,
            sender_ssrc,
            media_ssrc: 0,
            fb_count: 0,
            symbols: Vec::with_capacity(MAX_SYMBOLS),
            too_old: 0,
        }
    }

    fn slot(&self, seq: i64) -> Option<&Slot> {
        let slot = &self.slots[seq.rem_euclid(WINDOW as i64) as usize];
        (slot.received && slot.seq == seq).then_some(slot)
    }

    /// A packet carrying transport-wide sequence number `seq` arrived at `arrival_us`
    /// (µs on one monotonic clock) on stream `ssrc`. Any value is accepted: duplicates
    /// are ignored, packets older than the window counted in `too_old`.
    pub(crate) fn record(&mut self, seq: u16, arrival_us: i64, ssrc: u32) {
        let ext = match self.highest {
            // Far from 0 so that unwrapping back never goes negative.
            None => (1_i64 << 32) + i64::from(seq),
            Some(highest) => highest + i64::from(seq.wrapping_sub(highest as u16) as i16),
        };
        let highest = self.highest.unwrap_or(ext);
        if ext <= highest - WINDOW as i64 {
            self.too_old += 1;
            return;
        }
        let index = ext.rem_euclid(WINDOW as i64) as usize;
        let slot = &mut self.slots[index];
        if slot.received && slot.seq == ext {
            return;
        }
        *slot = Slot {
            seq: ext,
            arrival_us,
            received: true,
        };
        self.media_ssrc = ssrc;
        if self.highest.is_none() {
            self.next_report = ext;
        }
        self.highest = Some(highest.max(ext));
        // A late packet: its range is reported again, with what is known of it now.
        self.next_report = self.next_report.min(ext);
    }

    /// Builds the reports of everything since the last call (none when nothing arrived),
    /// into `out`. Call every feedback interval.
    pub(crate) fn poll_feedback(&mut self, out: &mut Vec<TransportLayerCc>) {
        let Some(highest) = self.highest else { return };
        let mut seq = self.next_report.max(highest - WINDOW as i64 + 1);
        while seq <= highest {
            seq = self.one_packet(seq, highest, out);
        }
        self.next_report = highest + 1;
    }

    /// One feedback packet from `base` on; returns the first sequence number it left out.
    fn one_packet(&mut self, base: i64, highest: i64, out: &mut Vec<TransportLayerCc>) -> i64 {
        // The reference time: the first received packet's, in 64 ms units (the newest
        // packet is always received, so there is one).
        let first_arrival = (base..=highest)
            .find_map(|s| self.slot(s).map(|slot| slot.arrival_us))
            .unwrap_or(0);
        let reference = first_arrival.div_euclid(REFERENCE_UNIT_US);
        let mut reported_us = reference * REFERENCE_UNIT_US;
        let mut deltas = Vec::new();
        self.symbols.clear();
        let mut seq = base;
        while seq <= highest && self.symbols.len() < MAX_SYMBOLS && deltas.len() < MAX_DELTAS {
            let symbol = match self.slot(seq) {
                None => SymbolTypeTcc::PacketNotReceived,
                Some(slot) => {
                    // Rounded from the time already reported, so errors never add up.
                    let units = (slot.arrival_us - reported_us + DELTA_UNIT_US / 2)
                        .div_euclid(DELTA_UNIT_US);
                    let Ok(units) = i16::try_from(units) else {
                        // More than 8 s from the previous one: the next packet starts here,
                        // with its own reference time.
                        break;
                    };
                    reported_us += i64::from(units) * DELTA_UNIT_US;
                    let type_tcc_packet = if (0..=255).contains(&units) {
                        SymbolTypeTcc::PacketReceivedSmallDelta
                    } else {
                        SymbolTypeTcc::PacketReceivedLargeDelta
                    };
                    deltas.push(RecvDelta {
                        type_tcc_packet,
                        delta: i64::from(units) * DELTA_UNIT_US,
                    });
                    type_tcc_packet
                }
            };
            self.symbols.push(symbol);
            seq += 1;
        }
        out.push(TransportLayerCc {
            sender_ssrc: self.sender_ssrc,
            media_ssrc: self.media_ssrc,
            base_sequence_number: base as u16,
            // ≤ MAX_SYMBOLS, which fits.
            packet_status_count: self.symbols.len() as u16,
            reference_time: (reference & 0xFF_FFFF) as u32,
            fb_pkt_count: self.fb_count,
            packet_chunks: encode_chunks(&self.symbols),
            recv_deltas: deltas,
        });
        self.fb_count = self.fb_count.wrapping_add(1);
        seq
    }
}

/// Status symbols as chunks: a run of 7 or more alike as a run-length chunk, else 14
/// symbols a bit each when none has a large delta, else 7 of two bits.
fn encode_chunks(symbols: &[SymbolTypeTcc]) -> Vec<PacketStatusChunk> {
    let mut chunks = Vec::new();
    let mut rest = symbols;
    while let Some(&first) = rest.first() {
        let run = rest.iter().take_while(|&&s| s == first).count();
        if run >= 7 {
            let run = run.min(0x1FFF);
            chunks.push(PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: first,
                run_length: run as u16,
            }));
            rest = &rest[run..];
            continue;
        }
        let one_bit = rest.len().min(14);
        let (symbol_size, take) = if rest[..one_bit]
            .iter()
            .all(|&s| s != SymbolTypeTcc::PacketReceivedLargeDelta)
        {
            (SymbolSizeTypeTcc::OneBit, one_bit)
        } else {
            (SymbolSizeTypeTcc::TwoBit, rest.len().min(7))
        };
        chunks.push(PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
            type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
            symbol_size,
            symbol_list: rest[..take].to_vec(),
        }));
        rest = &rest[take..];
    }
    chunks
}

#[cfg(test)]
#[path = "twcc_tests.rs"]
mod tests;
