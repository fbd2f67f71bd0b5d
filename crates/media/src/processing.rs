//! Microphone processing: echo cancellation, noise suppression, automatic gain control and
//! a high-pass filter, on 10 ms frames of 48 kHz mono. Behind a trait of our own, so the
//! implementation (today `sonora`, a pure-Rust port of WebRTC's audio processing module
//! with AEC3) can be swapped without touching the device or engine code.
//!
//! How to drive it, on one thread: before each capture frame, hand it every far-end frame
//! the speakers were given since ([`AudioProcessor::analyze_render`]); then process the
//! capture frame in place. The canceller finds the echo's delay itself; the stream delay
//! is a hint.
//!
//! Known costs of `sonora` 0.2.0, measured: about 50 small heap allocations per capture
//! frame with every stage on (none for the far end). So processing runs on a thread of its
//! own fed by lock-free queues, never in a device callback. Changing which stages run
//! re-initialises all of them (the canceller converges again, about a second).

use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, MaxProcessingRate,
    NoiseSuppression, NoiseSuppressionLevel, Pipeline,
};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::SAMPLE_RATE;

/// Samples in one processing frame: 10 ms at 48 kHz.
pub const PROCESSING_FRAME: usize = 480;
pub type ProcessingFrame = [f32; PROCESSING_FRAME];

/// Which stages run. All on by default, as a conferencing client ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingConfig {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
    /// Removes rumble below ~80 Hz. The canceller and the suppressor need it, so it runs
    /// whenever either does, whatever this says.
    pub high_pass: bool,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self::ALL
    }
}

impl ProcessingConfig {
    pub const ALL: Self = Self {
        echo_cancellation: true,
        noise_suppression: true,
        gain_control: true,
        high_pass: true,
    };
    pub const NONE: Self = Self {
        echo_cancellation: false,
        noise_suppression: false,
        gain_control: false,
        high_pass: false,
    };
}

/// What the canceller reports (each `None` until it has something to say).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessingStats {
    /// Echo return loss: how much quieter the echo is than the far end, in dB.
    pub echo_return_loss_db: Option<f64>,
    /// Echo return loss enhancement: how much the canceller removed, in dB.
    pub erle_db: Option<f64>,
    /// The echo delay it found, in ms.
    pub delay_ms: Option<i32>,
}

/// The processing chain, as the capture side drives it.
pub trait AudioProcessor: Send + 'static {
    /// A 10 ms frame of what the speakers were given (the far-end reference), in order.
    fn analyze_render(&mut self, frame: &ProcessingFrame);
    /// The next 10 ms of microphone, processed in place. Samples in −1.0..=1.0.
    fn process_capture(&mut self, frame: &mut ProcessingFrame);
    /// The delay from handing a frame to the speakers to hearing it in the microphone, as
    /// far as the devices know (a hint: the canceller measures it).
    fn set_stream_delay_ms(&mut self, delay_ms: u32);
    /// Turns stages on or off (the canceller then converges again).
    fn configure(&mut self, config: ProcessingConfig);
    fn config(&self) -> ProcessingConfig;
    fn stats(&self) -> ProcessingStats;
}

/// WebRTC's audio processing (AEC3, NS, AGC2, HPF) through `sonora`, at 48 kHz internally
/// (at its default 32 kHz the output stops at 16 kHz, and Opus sends full band).
pub struct SonoraProcessor {
    apm: AudioProcessing,
    config: ProcessingConfig,
    out: ProcessingFrame,
}

impl SonoraProcessor {
    pub fn new(config: ProcessingConfig) -> Self {
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        let apm = AudioProcessing::builder()
            .config(sonora_config(config))
            .capture_config(stream)
            .render_config(stream)
            .build();
        Self {
            apm,
            config,
            out: [0.0; PROCESSING_FRAME],
        }
    }
}

fn sonora_config(c: ProcessingConfig) -> Config {
    Config {
        pipeline: Pipeline {
            maximum_internal_processing_rate: MaxProcessingRate::Rate48kHz,
            ..Default::default()
        },
        high_pass_filter: c.high_pass.then(HighPassFilter::default),
        echo_canceller: c.echo_cancellation.then(EchoCanceller::default),
        noise_suppression: c.noise_suppression.then(|| NoiseSuppression {
            level: NoiseSuppressionLevel::High,
            ..Default::default()
        }),
        gain_controller2: c.gain_control.then(|| GainController2 {
            adaptive_digital: Some(AdaptiveDigital::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl AudioProcessor for SonoraProcessor {
    fn analyze_render(&mut self, frame: &ProcessingFrame) {
        // Fails only for a stream configuration we never use (rates, channel counts).
        let _ = self
            .apm
            .process_render_f32(&[&frame[..]], &mut [&mut self.out[..]]);
    }

    fn process_capture(&mut self, frame: &mut ProcessingFrame) {
        if self
            .apm
            .process_capture_f32(&[&frame[..]], &mut [&mut self.out[..]])
            .is_ok()
        {
            frame.copy_from_slice(&self.out);
        }
    }

    fn set_stream_delay_ms(&mut self, delay_ms: u32) {
        // Clamped to 0..=500 ms by sonora, which says so with an error: still applied.
        let _ = self
            .apm
            .set_stream_delay_ms(i32::try_from(delay_ms).unwrap_or(i32::MAX));
    }

    fn configure(&mut self, config: ProcessingConfig) {
        if config != self.config {
            self.config = config;
            self.apm.apply_config(sonora_config(config));
        }
    }

    fn config(&self) -> ProcessingConfig {
        self.config
    }

    fn stats(&self) -> ProcessingStats {
        let s = self.apm.statistics();
        ProcessingStats {
            echo_return_loss_db: s.echo_return_loss,
            erle_db: s.echo_return_loss_enhancement,
            delay_ms: s.delay_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic speech-like noise: bursts of filtered noise with pauses.
    struct Talker {
        seed: u32,
        low: f32,
        k: usize,
    }

    impl Talker {
        fn next(&mut self, frame: &mut ProcessingFrame) {
            let speaking = (self.k / 40) % 3 != 2; // 400 ms on, 400 on, 400 off
            for s in frame.iter_mut() {
                self.seed = self
                    .seed
                    .wrapping_mul(1_664_525)
                    .wrapping_add(1_013_904_223);
                let white = (self.seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                self.low += 0.2 * (white - self.low);
                *s = if speaking { 0.3 * self.low } else { 0.0 };
            }
            self.k += 1;
        }
    }

    fn energy_db(frames: &[ProcessingFrame]) -> f64 {
        let e: f64 = frames
            .iter()
            .flatten()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum();
        10.0 * (e / (frames.len() * PROCESSING_FRAME) as f64 + 1e-20).log10()
    }

    /// A synthetic room: the far end played, heard 40 ms later at −6 dB. After a few seconds
    /// the canceller removes most of it; without processing it stays.
    #[test]
    fn the_canceller_removes_a_delayed_echo_and_finds_its_delay() {
        for (config, expect_removed) in [
            (ProcessingConfig::ALL, true),
            (ProcessingConfig::NONE, false),
        ] {
            let mut apm = SonoraProcessor::new(config);
            let mut far = Talker {
                seed: 1,
                low: 0.0,
                k: 0,
            };
            let delay = 4; // frames of 10 ms
            let mut history = vec![[0f32; PROCESSING_FRAME]; delay + 1];
            let (mut mic_in, mut mic_out) = (Vec::new(), Vec::new());
            for k in 0..800 {
                let mut f = [0f32; PROCESSING_FRAME];
                far.next(&mut f);
                apm.analyze_render(&f);
                history.rotate_right(1);
                history[0] = f;
                let mut mic: ProcessingFrame = std::array::from_fn(|i| 0.5 * history[delay][i]);
                if k >= 500 {
                    mic_in.push(mic);
                }
                apm.process_capture(&mut mic);
                if k >= 500 {
                    mic_out.push(mic);
                }
            }
            let removed = energy_db(&mic_in) - energy_db(&mic_out);
            if expect_removed {
                assert!(removed > 25.0, "{removed} dB");
                let delay_ms = apm.stats().delay_ms.expect("a delay estimate");
                assert!((delay_ms - 40).abs() <= 8, "{delay_ms} ms");
            } else {
                assert!(removed.abs() < 1.0, "{removed} dB");
                assert_eq!(apm.stats().erle_db, None);
            }
        }
    }

    #[test]
    fn configure_switches_stages() {
        let mut apm = SonoraProcessor::new(ProcessingConfig::default());
        assert_eq!(apm.config(), ProcessingConfig::ALL);
        apm.configure(ProcessingConfig::NONE);
        assert_eq!(apm.config(), ProcessingConfig::NONE);
        // With nothing on it passes audio through untouched.
        let mut f: ProcessingFrame = std::array::from_fn(|i| (i as f32 / 480.0) - 0.5);
        let before = f;
        apm.process_capture(&mut f);
        assert_eq!(f, before);
    }
}
