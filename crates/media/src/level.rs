//! How loud the processed microphone is, and whether someone is speaking: one pass over
//! each 10 ms frame (a sum of squares and a peak), for the pre-join meter, the speaking
//! ring and the "you are muted" warning. Sans-IO and allocation-free.
//!
//! Voice activity is energy against an adaptive noise floor, with a hangover so the gaps
//! between syllables do not flicker. It runs after noise suppression, where steady noise
//! (fans, hum) is already gone, so a simple detector is enough; the floor also follows
//! what suppression leaves behind.

/// Below this nothing counts as sound (dBFS): a muted or absent device reads −100.
pub const SILENCE_DBFS: f32 = -100.0;
/// Speech must be this much above the noise floor.
const VOICE_ABOVE_FLOOR_DB: f32 = 12.0;
/// And at least this loud (dBFS): a quiet room's faint sounds are not a voice.
const VOICE_MIN_DBFS: f32 = -50.0;
/// Frames (10 ms) a detected voice is held after the last loud frame.
const HANGOVER_FRAMES: u32 = 25;
/// The floor falls at once to a quieter frame and rises this many dB per frame (≈ 3 dB/s):
/// it follows the quietest moments, not speech.
const FLOOR_RISE_DB: f32 = 0.03;

/// One frame's reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioLevel {
    /// Root mean square level, in dB relative to full scale (−100 for silence).
    pub rms_dbfs: f32,
    /// The largest absolute sample, 0.0 to 1.0 (clipping shows as 1.0).
    pub peak: f32,
    /// Someone is speaking (held for 250 ms after the last loud frame).
    pub voice: bool,
}

impl AudioLevel {
    pub const SILENT: AudioLevel = AudioLevel {
        rms_dbfs: SILENCE_DBFS,
        peak: 0.0,
        voice: false,
    };

    /// 0.0 (−60 dBFS and below) to 1.0 (0 dBFS): what a meter bar shows.
    pub fn meter(&self) -> f32 {
        ((self.rms_dbfs + 60.0) / 60.0).clamp(0.0, 1.0)
    }
}

#[derive(Debug, Clone)]
pub struct LevelMeter {
    floor_db: f32,
    hangover: u32,
}

impl Default for LevelMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl LevelMeter {
    pub fn new() -> Self {
        Self {
            // Start high: the first quiet frames pull it down at once.
            floor_db: -30.0,
            hangover: 0,
        }
    }

    /// Reads one frame of samples in −1.0..=1.0.
    pub fn measure(&mut self, frame: &[f32]) -> AudioLevel {
        let (mut energy, mut peak) = (0.0f32, 0.0f32);
        for &s in frame {
            energy += s * s;
            peak = peak.max(s.abs());
        }
        let mean = energy / frame.len().max(1) as f32;
        let rms_dbfs = if mean > 1e-10 {
            (10.0 * mean.log10()).max(SILENCE_DBFS)
        } else {
            SILENCE_DBFS
        };
        self.floor_db = if rms_dbfs < self.floor_db {
            rms_dbfs
        } else {
            (self.floor_db + FLOOR_RISE_DB).min(rms_dbfs)
        };
        let loud = rms_dbfs > VOICE_MIN_DBFS && rms_dbfs > self.floor_db + VOICE_ABOVE_FLOOR_DB;
        if loud {
            self.hangover = HANGOVER_FRAMES;
        } else {
            self.hangover = self.hangover.saturating_sub(1);
        }
        AudioLevel {
            rms_dbfs,
            peak: peak.min(1.0),
            voice: loud || self.hangover > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f32, k: usize) -> [f32; 480] {
        std::array::from_fn(|i| {
            amplitude * (std::f32::consts::TAU * 200.0 * (k * 480 + i) as f32 / 48_000.0).sin()
        })
    }

    fn noise(amplitude: f32, seed: &mut u32) -> [f32; 480] {
        std::array::from_fn(|_| {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            amplitude * ((*seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0)
        })
    }

    #[test]
    fn reads_levels_in_dbfs() {
        let mut meter = LevelMeter::new();
        let full = meter.measure(&tone(1.0, 0));
        assert!((full.rms_dbfs - -3.01).abs() < 0.1, "{full:?}");
        assert!(full.peak > 0.99);
        let quiet = meter.measure(&tone(0.01, 1));
        assert!((quiet.rms_dbfs - -43.0).abs() < 0.1, "{quiet:?}");
        assert_eq!(meter.measure(&[0.0; 480]).rms_dbfs, SILENCE_DBFS);
        assert_eq!(AudioLevel::SILENT.meter(), 0.0);
        assert!((full.meter() - 0.95).abs() < 0.01);
    }

    #[test]
    fn speech_over_noise_is_voice_and_noise_alone_is_not() {
        let mut meter = LevelMeter::new();
        let mut seed = 7;
        // Two seconds of a steady fan at −40 dBFS: never a voice once the floor found it.
        let noisy: Vec<bool> = (0..200)
            .map(|_| meter.measure(&noise(0.017, &mut seed)).voice)
            .collect();
        assert!(noisy[30..].iter().all(|v| !v), "{noisy:?}");
        // A voice 20 dB above it: detected at once, held through a 100 ms gap, released
        // after the hangover.
        for k in 0..50 {
            let mut f = tone(0.17, k);
            let n = noise(0.017, &mut seed);
            f.iter_mut().zip(n).for_each(|(s, n)| *s += n);
            assert!(meter.measure(&f).voice, "frame {k}");
        }
        for k in 0..10 {
            assert!(meter.measure(&noise(0.017, &mut seed)).voice, "gap {k}");
        }
        let after: Vec<bool> = (0..40)
            .map(|_| meter.measure(&noise(0.017, &mut seed)).voice)
            .collect();
        assert!(!after[20..].iter().any(|v| *v), "{after:?}");
        // The floor did not climb during the speech: a second voice is still heard.
        assert!(meter.measure(&tone(0.17, 0)).voice);
    }

    #[test]
    fn a_very_quiet_room_is_not_a_voice() {
        let mut meter = LevelMeter::new();
        let mut seed = 3;
        for _ in 0..100 {
            meter.measure(&noise(0.0001, &mut seed));
        }
        assert!(!meter.measure(&noise(0.002, &mut seed)).voice, "−60 dBFS");
    }
}
