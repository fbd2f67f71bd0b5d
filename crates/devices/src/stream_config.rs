//! How a stream is opened, the same for microphones and speakers: the device's own rate and
//! channel count, 10 ms buffers where it allows them, f32 samples where it takes them (the
//! host converts; PulseAudio always does) and its own format otherwise.

use cpal::traits::DeviceTrait as _;

use crate::device::Direction;

/// What to open `device` with: its configuration and sample format.
pub(crate) fn choose(
    device: &cpal::Device,
    direction: Direction,
) -> Result<(cpal::StreamConfig, cpal::SampleFormat), cpal::Error> {
    let default = match direction {
        Direction::Input => device.default_input_config()?,
        Direction::Output => device.default_output_config()?,
    };
    let (rate, channels) = (default.sample_rate(), default.channels());
    let takes_f32 = |mut ranges: Box<dyn Iterator<Item = cpal::SupportedStreamConfigRange>>| {
        ranges.any(|c| {
            c.sample_format() == cpal::SampleFormat::F32
                && c.channels() == channels
                && (c.min_sample_rate()..=c.max_sample_rate()).contains(&rate)
        })
    };
    let f32_ok = match direction {
        Direction::Input => device
            .supported_input_configs()
            .is_ok_and(|c| takes_f32(Box::new(c))),
        Direction::Output => device
            .supported_output_configs()
            .is_ok_and(|c| takes_f32(Box::new(c))),
    };
    let format = if f32_ok {
        cpal::SampleFormat::F32
    } else {
        default.sample_format()
    };
    let config = cpal::StreamConfig {
        channels,
        sample_rate: rate,
        buffer_size: buffer_size(default.buffer_size(), rate),
    };
    Ok((config, format))
}

/// 10 ms buffers where the device allows them: the callback then comes every 10 ms, which
/// is what the processing frames are.
fn buffer_size(supported: &cpal::SupportedBufferSize, rate: u32) -> cpal::BufferSize {
    let want = rate / 100;
    match supported {
        cpal::SupportedBufferSize::Range { min, max } if (*min..=*max).contains(&want) => {
            cpal::BufferSize::Fixed(want)
        }
        _ => cpal::BufferSize::Default,
    }
}

/// Runs `$body` with `$t` the Rust type of sample format `$format`; `$other` for formats
/// we do not take (24-bit, 64-bit integers, DSD).
macro_rules! with_sample_type {
    ($format:expr, $t:ident => $body:expr, $other:ident => $fallback:expr) => {
        match $format {
            cpal::SampleFormat::F32 => {
                type $t = f32;
                $body
            }
            cpal::SampleFormat::I16 => {
                type $t = i16;
                $body
            }
            cpal::SampleFormat::I32 => {
                type $t = i32;
                $body
            }
            cpal::SampleFormat::U16 => {
                type $t = u16;
                $body
            }
            cpal::SampleFormat::U8 => {
                type $t = u8;
                $body
            }
            cpal::SampleFormat::I8 => {
                type $t = i8;
                $body
            }
            cpal::SampleFormat::F64 => {
                type $t = f64;
                $body
            }
            $other => $fallback,
        }
    };
}
pub(crate) use with_sample_type;
