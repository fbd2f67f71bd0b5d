//! Synthetic media whose content carries time, so latency is measurable end to end.
//!
//! Audio: tone bursts locked to the wall clock. A burst of `freq_hz` starts at every
//! multiple of [`PULSE_PERIOD_MS`] of Unix time; a receiver on the same machine (or with a
//! synchronised clock) measures mouth-to-ear as (time it plays the onset) − (the onset's
//! wall-clock time), and checks the frequency to know whose voice it hears.

use std::f64::consts::TAU;
use std::ops::ControlFlow;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::audio::{AudioFrame, AudioSource, FRAME_SAMPLES, SAMPLE_RATE, SourceEnded};
use crate::clock::spawn_clock;

const FRAME: Duration = Duration::from_millis(20);

pub const PULSE_PERIOD_MS: u64 = 500;
pub const PULSE_MS: u64 = 100;
const AMPLITUDE: f64 = 12_000.0;

/// Tone bursts as a microphone delivers them: contiguous 20 ms frames of a signal locked
/// to the wall clock, produced on a clock thread of their own (as a device's callback
/// thread would) and handed over through a short queue. A reader that falls behind by more
/// than the queue loses frames, as with a device whose buffer overran.
pub struct ToneBursts {
    freq_hz: f64,
    /// How much of each period sounds: [`PULSE_MS`], or all of it for a steady tone.
    sounding_us: u64,
    frames: Option<mpsc::Receiver<AudioFrame>>,
}

/// Frames the clock thread may be ahead of the reader.
const QUEUE: usize = 4;

impl ToneBursts {
    pub fn new(freq_hz: f64) -> Self {
        Self {
            freq_hz,
            sounding_us: PULSE_MS * 1000,
            frames: None,
        }
    }

    /// A tone without pauses: every frame is audible, for measuring when the first sound
    /// of a microphone arrives (bursts would add up to 400 ms of waiting for the next one).
    pub fn continuous(freq_hz: f64) -> Self {
        Self {
            sounding_us: PULSE_PERIOD_MS * 1000,
            ..Self::new(freq_hz)
        }
    }

    /// The 20 ms ending at Unix time `end_us`.
    pub fn fill(&self, end_us: u64, out: &mut AudioFrame) {
        fill_tone(self.freq_hz, self.sounding_us, end_us, out);
    }

    fn start(&self) -> Result<mpsc::Receiver<AudioFrame>, SourceEnded> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (freq_hz, sounding_us) = (self.freq_hz, self.sounding_us);
        let (anchor, anchor_us) = (Instant::now(), unix_us_now());
        let mut frame: AudioFrame = [0; FRAME_SAMPLES];
        spawn_clock("estrade-tone", FRAME, move |deadline| {
            let since = deadline.saturating_duration_since(anchor);
            let end_us = anchor_us + since.as_micros() as u64;
            fill_tone(freq_hz, sounding_us, end_us, &mut frame);
            match tx.try_send(frame) {
                // Full: the reader is behind and this frame is lost, as in an overrun.
                Ok(()) | Err(TrySendError::Full(_)) => ControlFlow::Continue(()),
                Err(TrySendError::Closed(_)) => ControlFlow::Break(()),
            }
        })
        .map_err(|e| SourceEnded(format!("no thread for the synthetic microphone: {e}")))?;
        Ok(rx)
    }
}

fn fill_tone(freq_hz: f64, sounding_us: u64, end_us: u64, out: &mut AudioFrame) {
    let start_us = end_us.saturating_sub(20_000);
    for (i, s) in out.iter_mut().enumerate() {
        let t_us = start_us + i as u64 * 1_000_000 / u64::from(SAMPLE_RATE);
        let in_period_us = t_us % (PULSE_PERIOD_MS * 1000);
        *s = if in_period_us < sounding_us {
            let t = in_period_us as f64 / 1e6;
            (AMPLITUDE * (TAU * freq_hz * t).sin()) as i16
        } else {
            0
        };
    }
}

impl AudioSource for ToneBursts {
    async fn next_frame(&mut self, out: &mut AudioFrame) -> Result<(), SourceEnded> {
        if self.frames.is_none() {
            self.frames = Some(self.start()?);
        }
        let frames = self.frames.as_mut().expect("started above");
        *out = frames
            .recv()
            .await
            .ok_or_else(|| SourceEnded("the synthetic microphone's clock stopped".into()))?;
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
    /// Above +HYSTERESIS since the last fall below −HYSTERESIS (codec noise around zero
    /// is not a cycle).
    positive: bool,
    previous: i16,
    /// Where (in samples, interpolated) the current burst last rose through +HYSTERESIS.
    last_rise: Option<f64>,
    /// The burst's cycle lengths, in samples.
    periods: Vec<f64>,
    /// When (Unix µs) the last burst started playing.
    last_onset_us: Option<u64>,
    pub latencies_ms: Vec<f64>,
    pub frequencies_hz: Vec<f64>,
    pub frames: u64,
}

/// Whether bursts measured at `freqs` are the tone `freq`: the median within 40 Hz and at
/// least two thirds of them too (a burst cut by a join can read off; someone else's voice
/// reads off on all of them).
pub fn mostly_at(freqs: &[f64], freq: f64) -> bool {
    let mut sorted = freqs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let close = |f: &f64| (f - freq).abs() < 40.0;
    sorted.get(sorted.len() / 2).is_some_and(close)
        && sorted.iter().filter(|f| close(f)).count() * 3 >= sorted.len() * 2
}

const LOUD: u16 = 2_000;
/// Cycles kept per burst: a burst's pitch needs a few dozen; a steady tone (which never
/// ends its burst) must not grow without bound.
const MAX_PERIODS: usize = 1024;

/// Whether `frame` holds sound (a tone sample, not silence or codec noise).
pub fn is_audible(frame: &[i16]) -> bool {
    frame.iter().any(|s| s.unsigned_abs() > LOUD)
}
const HYSTERESIS: i16 = 1_000;

impl PulseAnalyser {
    /// `frame` was played at Unix time `played_us` (its first sample).
    pub fn feed(&mut self, frame: &[i16], played_us: u64) {
        self.frames += 1;
        for (i, &s) in frame.iter().enumerate() {
            let previous = std::mem::replace(&mut self.previous, s);
            let loud = s.unsigned_abs() > LOUD;
            if !self.in_burst {
                if !loud {
                    continue;
                }
                self.in_burst = true;
                self.burst_pos = 0;
                self.last_loud = 0;
                self.last_rise = None;
                self.periods.clear();
                self.positive = s > 0;
                let at_us = played_us + i as u64 * 1_000_000 / u64::from(SAMPLE_RATE);
                let period_us = PULSE_PERIOD_MS * 1000;
                // Sound again within half a period of an onset is the same burst, cut by a
                // concealed frame: not an onset of its own.
                if self
                    .last_onset_us
                    .is_none_or(|last| at_us.saturating_sub(last) >= period_us / 2)
                {
                    self.last_onset_us = Some(at_us);
                    self.latencies_ms.push((at_us % period_us) as f64 / 1000.0);
                }
            }
            self.burst_pos = self.burst_pos.saturating_add(1);
            if loud {
                self.last_loud = self.burst_pos;
            }
            if self.positive && s < -HYSTERESIS {
                self.positive = false;
            } else if !self.positive && s > HYSTERESIS {
                self.positive = true;
                // Where between the previous sample and this one the level was crossed.
                let (from, to) = (f64::from(previous), f64::from(s));
                let rise = (f64::from(HYSTERESIS) - from) / (to - from);
                let at = f64::from(self.burst_pos) - 1.0 + rise.clamp(0.0, 1.0);
                if let Some(last) = self.last_rise.replace(at)
                    && self.periods.len() < MAX_PERIODS
                {
                    self.periods.push(at - last);
                }
            }
            // 10 ms without a loud sample ends the burst.
            if self.burst_pos - self.last_loud > SAMPLE_RATE / 100 {
                self.end_burst();
            }
        }
    }

    /// The burst's frequency is its median cycle: a frame concealed or dropped inside a
    /// burst (jitter, loss) bends one or two cycles, not the pitch that says whose voice
    /// it is.
    fn end_burst(&mut self) {
        self.in_burst = false;
        if f64::from(self.last_loud) / f64::from(SAMPLE_RATE) <= 0.03 || self.periods.is_empty() {
            return;
        }
        let mid = self.periods.len() / 2;
        let (_, median, _) = self.periods.select_nth_unstable_by(mid, f64::total_cmp);
        self.frequencies_hz.push(f64::from(SAMPLE_RATE) / *median);
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

    #[test]
    fn a_burst_cut_by_a_silent_frame_is_one_onset() {
        let source = ToneBursts::new(880.0);
        let mut analyser = PulseAnalyser::default();
        let mut frame = [0i16; FRAME_SAMPLES];
        let t0 = 1_790_000_000_000_000u64;
        for k in 0..100u64 {
            let end = t0 + (k + 1) * 20_000;
            source.fill(end, &mut frame);
            if k % 25 == 2 {
                frame.fill(0); // concealment gone quiet in the middle of each burst
            }
            analyser.feed(&frame, end - 20_000 + 37_000);
        }
        assert_eq!(analyser.latencies_ms.len(), 4, "{analyser:?}");
        assert!(analyser.latencies_ms.iter().all(|l| (l - 37.0).abs() < 1.0));
    }

    #[test]
    fn a_continuous_tone_is_audible_in_every_frame_and_bursts_are_not() {
        let (steady, bursts) = (ToneBursts::continuous(440.0), ToneBursts::new(440.0));
        let mut frame = [0i16; FRAME_SAMPLES];
        let t0 = 1_790_000_000_000_000u64;
        let (mut audible_steady, mut audible_bursts) = (0, 0);
        for k in 0..50u64 {
            steady.fill(t0 + (k + 1) * 20_000, &mut frame);
            audible_steady += usize::from(is_audible(&frame));
            bursts.fill(t0 + (k + 1) * 20_000, &mut frame);
            audible_bursts += usize::from(is_audible(&frame));
        }
        assert_eq!(audible_steady, 50);
        assert_eq!(audible_bursts, 10, "100 ms of every 500");
    }
}
