//! Mono resampling between a device's rate and 48 kHz, and by a few hundred ppm to follow a
//! clock that drifts: a fixed number of samples out per call, as many in as that takes.
//! Windowed-sinc (rubato), sized at construction: no allocation per call. Equal rates with
//! no drift to follow pass straight through.

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{
    Adjustable, Async, FixedAsync, Resampler as _, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

/// How far the ratio may be moved from nominal (±1 %): more than any clock drift, small
/// enough that the filter keeps its quality.
const MAX_RELATIVE: f64 = 1.01;

#[derive(Debug, thiserror::Error)]
#[error("resampler from {from} Hz to {to} Hz: {source}")]
pub struct ResamplerError {
    from: u32,
    to: u32,
    #[source]
    source: rubato::ResamplerConstructionError,
}

/// A fixed `chunk` of samples at `to` Hz out of each call, from however many `from` Hz samples
/// [`needed`](Self::needed) says.
pub struct MonoResampler {
    inner: Option<Async<f32>>,
    chunk: usize,
}

impl MonoResampler {
    /// `adjustable`: the ratio will be moved ([`set_drift`](Self::set_drift)) even if the
    /// rates are equal. 64 taps: about 0.7 ms of delay, flat to 20 kHz at 48 kHz.
    pub fn new(from: u32, to: u32, chunk: usize, adjustable: bool) -> Result<Self, ResamplerError> {
        if from == to && !adjustable {
            return Ok(Self { inner: None, chunk });
        }
        let parameters = SincInterpolationParameters::new(64, WindowFunction::BlackmanHarris2)
            .interpolation(SincInterpolationType::Cubic);
        let inner = Async::new_sinc(
            f64::from(to) / f64::from(from),
            MAX_RELATIVE,
            &parameters,
            chunk,
            1,
            FixedAsync::Output,
        )
        .map_err(|source| ResamplerError { from, to, source })?;
        Ok(Self {
            inner: Some(inner),
            chunk,
        })
    }

    /// Input samples the next [`process`](Self::process) consumes.
    pub fn needed(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(self.chunk, |r| r.input_frames_next())
    }

    /// The most [`needed`](Self::needed) can say (size input buffers with it).
    pub fn max_needed(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(self.chunk, |r| r.input_frames_max())
    }

    /// Delay the filter adds, in output samples.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Consumes `input[..needed()]` and writes `out[..chunk]`. Returns the samples consumed.
    /// `input` shorter than `needed()` is padded with silence (the end of a stream).
    pub fn process(&mut self, input: &[f32], out: &mut [f32]) -> usize {
        let out = &mut out[..self.chunk];
        let Some(inner) = &mut self.inner else {
            let n = input.len().min(self.chunk);
            out[..n].copy_from_slice(&input[..n]);
            out[n..].fill(0.0);
            return n;
        };
        let need = inner.input_frames_next();
        let n = input.len().min(need);
        let (Ok(input), Ok(mut output)) = (
            SequentialSlice::new(&input[..n], 1, n),
            SequentialSlice::new_mut(out, 1, self.chunk),
        ) else {
            unreachable!("one channel, lengths taken from the slices");
        };
        let partial = rubato::Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: Some(n),
            active_channels_mask: None,
        };
        let indexing = (n < need).then_some(&partial);
        match inner.process_into_buffer(&input, &mut output, indexing) {
            Ok((used, _)) => used,
            // Only wrong buffer sizes fail, and these are sized from `needed`.
            Err(_) => {
                out.fill(0.0);
                n
            }
        }
    }

    /// Follows a clock `ppm` parts per million faster (positive: more output per input) than
    /// nominal, ramped over the next chunk so the change is inaudible. Clamped to ±1 %.
    pub fn set_drift(&mut self, ppm: f64) {
        if let Some(inner) = &mut self.inner {
            let relative = (1.0 + ppm * 1e-6).clamp(1.0 / MAX_RELATIVE, MAX_RELATIVE);
            // In bounds by the clamp above.
            let _ = inner.set_resample_ratio_relative(relative, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, from: usize, n: usize) -> Vec<f32> {
        (from..from + n)
            .map(|i| {
                (0.5 * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin()) as f32
            })
            .collect()
    }

    /// Frequency from zero crossings (upward) over a long signal.
    fn frequency(signal: &[f32], rate: u32) -> f64 {
        let ups: Vec<usize> = signal
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
            .map(|(i, _)| i)
            .collect();
        let cycles = ups.len() - 1;
        f64::from(rate) * cycles as f64 / (ups[cycles] - ups[0]) as f64
    }

    #[test]
    fn converts_44_1_to_48_khz_keeping_pitch_and_level() {
        let mut rs = MonoResampler::new(44_100, 48_000, 480, false).unwrap();
        let input = sine(1000.0, 44_100, 0, 44_100 * 2);
        let (mut at, mut out, mut chunk) = (0, Vec::new(), [0f32; 480]);
        while at + rs.needed() <= input.len() {
            let need = rs.needed();
            assert!(need <= rs.max_needed());
            at += rs.process(&input[at..at + need], &mut chunk);
            out.extend_from_slice(&chunk);
        }
        assert!(
            (out.len() as f64 / 96_000.0 - 1.0).abs() < 0.01,
            "{}",
            out.len()
        );
        let steady = &out[2000..];
        assert!((frequency(steady, 48_000) - 1000.0).abs() < 0.5);
        let peak = steady.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.5).abs() < 0.01, "{peak}");
        assert!(rs.delay() < 48, "{}", rs.delay());
    }

    #[test]
    fn equal_rates_pass_through_unless_drift_is_followed() {
        let mut rs = MonoResampler::new(48_000, 48_000, 480, false).unwrap();
        let input = sine(440.0, 48_000, 0, 480);
        let mut out = [0f32; 480];
        assert_eq!(rs.process(&input, &mut out), 480);
        assert_eq!(&out[..], &input[..]);
        assert_eq!(rs.delay(), 0);
    }

    #[test]
    fn drift_changes_the_consumption_rate_by_that_much() {
        let mut rs = MonoResampler::new(48_000, 48_000, 960, true).unwrap();
        rs.set_drift(-1000.0); // consume 0.1 % faster than nominal
        let input = sine(440.0, 48_000, 0, 48_000 * 12);
        let (mut at, mut chunk, mut chunks) = (0, [0f32; 960], 0usize);
        while at + rs.max_needed() <= input.len() {
            let need = rs.needed();
            at += rs.process(&input[at..at + need], &mut chunk);
            chunks += 1;
        }
        let ratio = at as f64 / (chunks * 960) as f64;
        assert!((ratio - 1.001).abs() < 0.0002, "{ratio}");
    }
}
