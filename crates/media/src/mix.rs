//! The playout mix: every remote microphone (and local sounds such as the speaker test)
//! summed into one 48 kHz mono signal, 20 ms per [`Mixer::render`], as the output device's
//! callback asks. A limiter keeps headroom: several loud voices at once are turned down
//! smoothly instead of clipping.
//!
//! The callback side ([`Mixer`]) never allocates or frees: sources arrive through a bounded
//! lock-free queue, and those that ended go back through another to be dropped by the
//! control side ([`MixerInput::collect`]).

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::audio::{AudioFrame, FRAME_SAMPLES};
use crate::playout::{Pulled, RemoteAudio};

/// Sources mixed at most (remote microphones and sounds together).
pub const MAX_SOURCES: usize = 64;
/// The limiter keeps peaks below this (−1 dBFS) and soft-clips what still goes above.
const CEILING: f32 = 0.89;
/// The limiter turns down within 1 ms.
const ATTACK_SAMPLES: usize = 48;
/// Gain recovers by this factor per 20 ms after the limiter turned it down (≈ 12 dB/s).
const RELEASE: f32 = 1.0 / 0.972;

/// A 20 ms block of the mix, 48 kHz mono, −1.0..=1.0.
pub type MixFrame = [f32; FRAME_SAMPLES];

enum Source {
    Remote(Box<RemoteAudio>),
    Sound { samples: Arc<[f32]>, at: usize },
}

/// The mix is full: [`MAX_SOURCES`] are playing.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("the audio mix is full ({MAX_SOURCES} sources)")]
pub struct MixerFull;

/// The control side: adds sources, drops those that ended.
#[derive(Clone)]
pub struct MixerInput {
    arrivals: Sender<Source>,
    retired: Receiver<Source>,
}

/// The callback side.
pub struct Mixer {
    sources: Vec<Source>,
    arrivals: Receiver<Source>,
    retired: Sender<Source>,
    pcm: AudioFrame,
    gain: f32,
}

pub fn mixer() -> (MixerInput, Mixer) {
    let (arrivals_tx, arrivals) = crossbeam_channel::bounded(MAX_SOURCES);
    let (retired, retired_rx) = crossbeam_channel::bounded(MAX_SOURCES * 2);
    (
        MixerInput {
            arrivals: arrivals_tx,
            retired: retired_rx,
        },
        Mixer {
            sources: Vec::with_capacity(MAX_SOURCES),
            arrivals,
            retired,
            pcm: [0; FRAME_SAMPLES],
            gain: 1.0,
        },
    )
}

impl MixerInput {
    /// Plays a remote microphone until it ends.
    pub fn add_remote(&self, audio: RemoteAudio) -> Result<(), MixerFull> {
        self.send(Source::Remote(Box::new(audio)))
    }

    /// Plays `samples` (48 kHz mono) once.
    pub fn play_sound(&self, samples: Arc<[f32]>) -> Result<(), MixerFull> {
        self.send(Source::Sound { samples, at: 0 })
    }

    fn send(&self, source: Source) -> Result<(), MixerFull> {
        self.collect();
        match self.arrivals.try_send(source) {
            Ok(()) => Ok(()),
            // Disconnected: no device plays this mix any more; nothing will hear it.
            Err(TrySendError::Disconnected(_)) => Ok(()),
            Err(TrySendError::Full(_)) => Err(MixerFull),
        }
    }

    /// Frees the sources that ended. Returns how many.
    pub fn collect(&self) -> usize {
        self.retired.try_iter().count()
    }
}

impl Mixer {
    /// The next 20 ms of the mix into `out`; `now` is when it will be played (the device's
    /// clock). Returns how many sources played audio. No allocation, no lock.
    pub fn render(&mut self, now: Instant, out: &mut MixFrame) -> usize {
        while self.sources.len() < MAX_SOURCES {
            match self.arrivals.try_recv() {
                Ok(s) => self.sources.push(s),
                Err(_) => break,
            }
        }
        out.fill(0.0);
        let mut audible = 0;
        let mut k = 0;
        while k < self.sources.len() {
            let ended = match &mut self.sources[k] {
                Source::Remote(audio) => match audio.pull(now, &mut self.pcm) {
                    Pulled::Audio => {
                        audible += 1;
                        for (o, &s) in out.iter_mut().zip(&self.pcm) {
                            *o += f32::from(s) / 32_768.0;
                        }
                        false
                    }
                    Pulled::Silence => false,
                    Pulled::Ended => true,
                },
                Source::Sound { samples, at } => {
                    let n = (samples.len() - *at).min(FRAME_SAMPLES);
                    for (o, &s) in out.iter_mut().zip(&samples[*at..*at + n]) {
                        *o += s;
                    }
                    *at += n;
                    audible += 1;
                    *at >= samples.len()
                }
            };
            if ended {
                let source = self.sources.swap_remove(k);
                // Full only if the control side stopped collecting: then it is freed here.
                let _ = self.retired.try_send(source);
            } else {
                k += 1;
            }
        }
        self.limit(out);
        audible
    }

    /// Turns the block down if it would exceed the ceiling (within 1 ms: a limiter's
    /// attack, quick but no click), or recovers slowly over the block; a soft clip catches
    /// what the attack lets through.
    fn limit(&mut self, out: &mut MixFrame) {
        let peak = out.iter().fold(0f32, |m, s| m.max(s.abs()));
        let (target, ramp) = if peak * self.gain > CEILING {
            (CEILING / peak, ATTACK_SAMPLES)
        } else {
            ((self.gain * RELEASE).min(1.0), FRAME_SAMPLES)
        };
        let step = (target - self.gain) / ramp as f32;
        for (i, s) in out.iter_mut().enumerate() {
            let g = if i < ramp {
                self.gain + step * (i + 1) as f32
            } else {
                target
            };
            *s = soft_clip(*s * g);
        }
        self.gain = target;
    }

    /// Sources playing now.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// Linear up to the ceiling, then bends smoothly towards ±0.99, never reaching full scale.
fn soft_clip(x: f32) -> f32 {
    let a = x.abs();
    if a <= CEILING {
        return x;
    }
    let room = 0.99 - CEILING;
    (CEILING + room * ((a - CEILING) / room).tanh()).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playout::remote_audio;
    use bytes::Bytes;
    use std::time::Duration;

    fn tone(freq: f32, amplitude: f32, len: usize) -> Arc<[f32]> {
        (0..len)
            .map(|i| amplitude * (std::f32::consts::TAU * freq * i as f32 / 48_000.0).sin())
            .collect()
    }

    #[test]
    fn sums_sources_and_frees_them_off_the_callback_when_they_end() {
        let (input, mut mixer) = mixer();
        input.play_sound(tone(440.0, 0.2, 1200)).unwrap();
        input.play_sound(tone(660.0, 0.2, 960)).unwrap();
        let mut out = [0f32; FRAME_SAMPLES];
        let now = Instant::now();
        assert_eq!(mixer.render(now, &mut out), 2);
        let expected = tone(440.0, 0.2, 960)[100] + tone(660.0, 0.2, 960)[100];
        assert!((out[100] - expected).abs() < 1e-6);
        assert_eq!(mixer.len(), 1, "the 960-sample sound ended");
        assert_eq!(mixer.render(now, &mut out), 1);
        assert!(out[300..].iter().all(|&s| s == 0.0), "the rest is silence");
        assert!(mixer.is_empty());
        assert_eq!(input.collect(), 2, "both freed by the control side");
    }

    #[test]
    fn loud_voices_together_never_clip_and_the_gain_comes_back() {
        let (input, mut mixer) = mixer();
        for f in [300.0, 450.0, 700.0] {
            input.play_sound(tone(f, 0.8, 48_000)).unwrap();
        }
        let mut out = [0f32; FRAME_SAMPLES];
        let (mut max, mut max_step, mut last) = (0f32, 0f32, 0f32);
        for _ in 0..50 {
            mixer.render(Instant::now(), &mut out);
            max = out.iter().fold(max, |m, s| m.max(s.abs()));
            for &s in &out {
                max_step = max_step.max((s - last).abs());
                last = s;
            }
        }
        assert!(max <= 0.99, "{max}");
        assert!(max > 0.85, "still loud: {max}");
        // The three tones move at most ~0.15 per sample at full gain: more is a click.
        assert!(max_step < 0.2, "{max_step}");
        // One quiet voice afterwards: the gain recovers to unity within a second or so.
        input.play_sound(tone(500.0, 0.1, 48_000 * 2)).unwrap();
        for _ in 0..100 {
            mixer.render(Instant::now(), &mut out);
        }
        let peak = out.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.1).abs() < 0.005, "{peak}");
    }

    #[test]
    fn a_remote_microphone_plays_until_its_feed_is_gone() {
        let (input, mut mixer) = mixer();
        let (feed, audio) = remote_audio().unwrap();
        input.add_remote(audio).unwrap();
        let mut out = [0f32; FRAME_SAMPLES];
        let t0 = Instant::now();
        assert_eq!(mixer.render(t0, &mut out), 0, "nothing received yet");
        feed.push(t0, 1, 960, Bytes::from_static(&[0xf8, 0xff, 0xfe]))
            .unwrap();
        drop(feed);
        let later = t0 + Duration::from_millis(100);
        let mut played = 0;
        for _ in 0..5 {
            played += mixer.render(later, &mut out);
        }
        assert!(played >= 1);
        assert!(mixer.is_empty(), "ended and retired");
        assert_eq!(input.collect(), 1);
    }

    #[test]
    fn a_full_mix_refuses_more() {
        let (input, _mixer) = mixer();
        for _ in 0..MAX_SOURCES {
            input.play_sound(tone(440.0, 0.1, 10)).unwrap();
        }
        assert_eq!(input.play_sound(tone(440.0, 0.1, 10)), Err(MixerFull));
    }
}
