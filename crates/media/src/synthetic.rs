//! Synthetic media whose content carries time, so latency is measurable end to end.
//!
//! Audio: tone bursts locked to the wall clock. A burst of `freq_hz` starts at every
//! multiple of [`PULSE_PERIOD_MS`] of Unix time; a receiver on the same machine (or with a
//! synchronised clock) measures mouth-to-ear as (time it plays the onset) − (the onset's
//! wall-clock time), and checks the frequency to know whose voice it hears.

use std::f64::consts::TAU;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::audio::{AudioFrame, AudioSource, SAMPLE_RATE, SourceEnded};

pub const PULSE_PERIOD_MS: u64 = 500;
pub const PULSE_MS: u64 = 100;
const AMPLITUDE: f64 = 12_000.0;

/// Tone bursts paced by a timer, as a microphone would deliver them.
pub struct ToneBursts {
    freq_hz: f64,
    next_end: Option<Instant>,
}

impl ToneBursts {
    pub fn new(freq_hz: f64) -> Self {
        Self {
            freq_hz,
            next_end: None,
        }
    }

    /// The 20 ms ending at Unix time `end_us`.
    pub fn fill(&self, end_us: u64, out: &mut AudioFrame) {
        let start_us = end_us.saturating_sub(20_000);
        for (i, s) in out.iter_mut().enumerate() {
            let t_us = start_us + i as u64 * 1_000_000 / u64::from(SAMPLE_RATE);
            let in_period_us = t_us % (PULSE_PERIOD_MS * 1000);
            *s = if in_period_us < PULSE_MS * 1000 {
                let t = in_period_us as f64 / 1e6;
                (AMPLITUDE * (TAU * self.freq_hz * t).sin()) as i16
            } else {
                0
            };
        }
    }
}

impl AudioSource for ToneBursts {
    async fn next_frame(&mut self, out: &mut AudioFrame) -> Result<(), SourceEnded> {
        let end = *self
            .next_end
            .get_or_insert_with(|| Instant::now() + Duration::from_millis(20));
        tokio::time::sleep_until(end.into()).await;
        // A late wake-up (busy machine) skips ahead rather than bursting to catch up.
        let now = Instant::now();
        self.next_end = Some(if now > end + Duration::from_millis(40) {
            now + Duration::from_millis(20)
        } else {
            end + Duration::from_millis(20)
        });
        self.fill(unix_us_now(), out);
        Ok(())
    }
}

pub fn unix_us_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// Listens to received audio: finds burst onsets (→ latency) and their frequency.
#[derive(Debug, Default, Clone)]
pub struct PulseAnalyser {
    in_burst: bool,
    /// Samples since the burst's first loud sample, and at its last loud one.
    burst_pos: u32,
    last_loud: u32,
    /// Full cycles counted with hysteresis (codec noise around zero is not a cycle).
    cycles: u32,
    positive: bool,
    pub latencies_ms: Vec<f64>,
    pub frequencies_hz: Vec<f64>,
    pub frames: u64,
}

/// Whether bursts measured at `freqs` are the tone `freq`: the median within 40 Hz and at
/// least two thirds of them too (a burst cut by a join, a trim or concealment can read off;
/// someone else's voice reads off on all of them).
pub fn mostly_at(freqs: &[f64], freq: f64) -> bool {
    let mut sorted = freqs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let close = |f: &f64| (f - freq).abs() < 40.0;
    sorted.get(sorted.len() / 2).is_some_and(close)
        && sorted.iter().filter(|f| close(f)).count() * 3 >= sorted.len() * 2
}

const LOUD: u16 = 2_000;
const HYSTERESIS: i16 = 1_000;

impl PulseAnalyser {
    /// `frame` was played at Unix time `played_us` (its first sample).
    pub fn feed(&mut self, frame: &[i16], played_us: u64) {
        self.frames += 1;
        for (i, &s) in frame.iter().enumerate() {
            let loud = s.unsigned_abs() > LOUD;
            if !self.in_burst {
                if !loud {
                    continue;
                }
                self.in_burst = true;
                self.burst_pos = 0;
                self.last_loud = 0;
                self.cycles = 0;
                self.positive = s > 0;
                let at_us = played_us + i as u64 * 1_000_000 / u64::from(SAMPLE_RATE);
                let period_us = PULSE_PERIOD_MS * 1000;
                self.latencies_ms.push((at_us % period_us) as f64 / 1000.0);
            }
            self.burst_pos += 1;
            if loud {
                self.last_loud = self.burst_pos;
            }
            if self.positive && s < -HYSTERESIS {
                self.positive = false;
            } else if !self.positive && s > HYSTERESIS {
                self.positive = true;
                self.cycles += 1;
            }
            // 10 ms without a loud sample ends the burst.
            if self.burst_pos - self.last_loud > SAMPLE_RATE / 100 {
                let secs = f64::from(self.last_loud) / f64::from(SAMPLE_RATE);
                if secs > 0.03 {
                    self.frequencies_hz.push(f64::from(self.cycles) / secs);
                }
                self.in_burst = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::FRAME_SAMPLES;

    #[test]
    fn bursts_are_found_with_their_frequency_and_delay() {
        let source = ToneBursts::new(440.0);
        let mut analyser = PulseAnalyser::default();
        let mut frame = [0i16; FRAME_SAMPLES];
        let t0 = 1_790_000_000_000_000u64; // a multiple of the period
        // Played 37 ms after capture.
        for k in 0..100u64 {
            let end = t0 + (k + 1) * 20_000;
            source.fill(end, &mut frame);
            analyser.feed(&frame, end - 20_000 + 37_000);
        }
        assert_eq!(
            analyser.latencies_ms.len(),
            4,
            "{:?}",
            analyser.latencies_ms
        );
        for l in &analyser.latencies_ms {
            assert!((l - 37.0).abs() < 1.0, "{l}");
        }
        for f in &analyser.frequencies_hz {
            assert!((f - 440.0).abs() < 15.0, "{f}");
        }
        assert!(mostly_at(&analyser.frequencies_hz, 440.0));
        assert!(!mostly_at(&analyser.frequencies_hz, 880.0));
        assert!(!mostly_at(&[], 440.0));
        assert!(
            mostly_at(&[723.0, 877.0, 893.0, 880.0], 880.0),
            "one cut burst is fine"
        );
        assert!(analyser.frequencies_hz.len() >= 3);
    }
}
