//! Which lost video packets to ask the server for again (RTCP NACK, RFC 4585), per remote
//! stream, sans-IO: arrivals in, the sequence numbers to ask for out, time passed in.
//!
//! Why not webrtc-rs's generator (interceptor 0.17): it asked every 100 ms, without end,
//! for every packet missing from its window, for audio as well as video (livekit-server
//! offers `nack` on Opus, and the generator follows the negotiated feedback). On a capped
//! downlink (150 kbit/s against a 720p camera, the poor-link test) nine packets in ten
//! are lost, so it asked for nearly all of them, the server resent each up to three
//! times into the full link, and those resends crowded out the trainer's voice: 445
//! packets dropped at the cap in 15 s against 145 with no NACK at all, and 50 audio
//! resends arriving after their turn to play. Here, as libwebrtc's `NackRequester` does in
//! spirit but with a budget:
//! - a packet is asked for once [`REORDER`] later packets came (a late packet under
//!   jitter is not lost), or [`REORDER_TIME_US`] passed;
//! - at most [`TRIES`] times, [`RETRY_US`] apart (livekit-server resends a packet at most
//!   three times, 100 ms apart at most, but our asks can be lost on the way too: with 3
//!   tries 100 ms apart, 10 % loss each way showed 41 % of a camera's frames once; with
//!   5 tries 60 ms apart, 61 and 99 % in two runs);
//! - not after [`MAX_AGE_US`] (the video's frame is given up then and a keyframe asked);
//! - within a budget of [`BUDGET_SHARE`] of the packets received (a resend the link
//!   cannot carry only takes the place of another packet);
//! - and not at all while most packets are lost ([`FUTILE_LOSS`]): a frame needs all its
//!   packets, and the cure is the keyframe after the link recovers (or the layer the
//!   server or our sound guard switches to).
//!
//! Audio is not asked for: its resend would come after its turn to play (the jitter
//! buffer plays a lost frame from FEC or RED copies, or conceals it).

use std::collections::VecDeque;

/// Later packets that must have come before a gap is asked for: a packet merely late
/// (reordered under jitter) need not be resent (webrtc-rs's generator skipped the newest
/// 8 gaps as well, our setting of it since session 5).
pub(crate) const REORDER: i64 = 8;
/// ... or the time after which it is asked for anyway (the tail of a frame, a slow stream).
pub(crate) const REORDER_TIME_US: i64 = 40_000;
/// How many times one packet is asked for, and how far apart.
pub(crate) const TRIES: u8 = 5;
pub(crate) const RETRY_US: i64 = 60_000;
/// A gap older than this is not asked for: the frame waits `REPAIR_WAIT` (500 ms of media
/// time) for it, then is given up.
pub(crate) const MAX_AGE_US: i64 = 450_000;
/// Gaps remembered: a longer run of loss is not repaired packet by packet.
const MAX_MISSING: usize = 256;
/// Asks allowed per packet received, and saved up at most: a link that was clean saved
/// the budget up, and spending much of it at once into a link that just got capped
/// floods it (64 saved asks: 70 kB of resends, ~4 s of a 150 kbit/s link).
pub(crate) const BUDGET_SHARE: f64 = 0.4;
pub(crate) const BUDGET_MAX: f64 = 8.0;
/// The stream's recent loss (an average over ~16 packets expected) beyond which nothing is
/// asked for. Under 20 % random loss that average has a spread of ~0.07, so it stays far
/// below (a unit test: 20 % loss gets ≥ 95 % of its gaps asked for).
pub(crate) const FUTILE_LOSS: f64 = 0.5;
const LOSS_WEIGHT: f64 = 1.0 / 16.0;

#[derive(Debug, Clone, Copy)]
struct Gap {
    seq: i64,
    seen_us: i64,
    asked_us: i64,
    tries: u8,
}

/// One remote stream's lost packets and what was asked for.
#[derive(Debug)]
pub(crate) struct NackRequester {
    /// Highest unwrapped sequence number received.
    highest: Option<i64>,
    /// Missing packets, oldest first.
    gaps: VecDeque<Gap>,
    budget: f64,
    /// Share of the packets expected lately that did not come.
    loss: f64,
    /// When the newest packet came (µs).
    last_us: i64,
}

impl Default for NackRequester {
    fn default() -> Self {
        Self::new()
    }
}

impl NackRequester {
    pub(crate) fn new() -> Self {
        Self {
            highest: None,
            gaps: VecDeque::with_capacity(MAX_MISSING),
            budget: 0.0,
            loss: 0.0,
            last_us: 0,
        }
    }

    /// A packet with sequence number `seq` arrived at `at_us` (µs on any steady clock).
    pub(crate) fn handle_packet(&mut self, seq: u16, at_us: i64) {
        self.budget = (self.budget + BUDGET_SHARE).min(BUDGET_MAX);
        self.last_us = at_us;
        let Some(highest) = self.highest else {
            self.highest = Some(i64::from(seq));
            return;
        };
        let seq = unwrap(highest, seq);
        if seq <= highest {
            // Late or resent: no longer missing (a duplicate finds nothing to remove).
            if let Ok(i) = self.gaps.binary_search_by_key(&seq, |g| g.seq) {
                self.gaps.remove(i);
            }
            return;
        }
        let skipped = seq - highest - 1;
        // One sample per packet expected: the packets skipped were lost (so far), this one came.
        for _ in 0..skipped.min(32) {
            self.loss += (1.0 - self.loss) * LOSS_WEIGHT;
        }
        self.loss -= self.loss * LOSS_WEIGHT;
        // A jump beyond what is remembered (a new layer, a long cut): only the newest gaps.
        for missing in (highest + 1).max(seq - MAX_MISSING as i64)..seq {
            if self.gaps.len() == MAX_MISSING {
                self.gaps.pop_front();
            }
            self.gaps.push_back(Gap {
                seq: missing,
                seen_us: at_us,
                asked_us: i64::MIN,
                tries: 0,
            });
        }
        self.highest = Some(seq);
    }

    /// The sequence numbers to ask for at `now_us`, appended to `out`: first asks in
    /// order, then retries in order (call every ~20 ms; nothing is due between calls).
    pub(crate) fn poll_nack(&mut self, now_us: i64, out: &mut Vec<u16>) {
        let Some(highest) = self.highest else { return };
        self.gaps
            .retain(|g| g.tries < TRIES && now_us.saturating_sub(g.seen_us) <= MAX_AGE_US);
        let futile = self.loss >= FUTILE_LOSS;
        // First asks before retries: within the budget, a packet never asked for is the
        // likelier to come back.
        for retry in [false, true] {
            for gap in self.gaps.iter_mut().filter(|g| (g.tries > 0) == retry) {
                let settled = highest - gap.seq >= REORDER
                    || now_us.saturating_sub(gap.seen_us) >= REORDER_TIME_US;
                let due = !retry || now_us.saturating_sub(gap.asked_us) >= RETRY_US;
                if !settled || !due || futile || self.budget < 1.0 {
                    continue;
                }
                self.budget -= 1.0;
                gap.tries += 1;
                gap.asked_us = now_us;
                out.push(gap.seq as u16);
            }
        }
    }

    /// How long before `now_us` the newest packet came.
    pub(crate) fn silent_since(&self, now_us: i64) -> i64 {
        now_us.saturating_sub(self.last_us)
    }

    /// Packets missing now (asked for or not).
    #[cfg(test)]
    pub(crate) fn missing(&self) -> usize {
        self.gaps.len()
    }
}

/// `seq` as the unwrapped sequence number nearest `reference`.
fn unwrap(reference: i64, seq: u16) -> i64 {
    let delta = i64::from(seq.wrapping_sub(reference as u16) as i16);
    reference + delta
}

#[cfg(test)]
#[path = "nack_tests.rs"]
mod tests;
