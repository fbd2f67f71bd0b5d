//! A microphone's stream: the device callback converts whatever the device delivers (any
//! sample format, rate and channel count) to mono f32 and pushes it into a lock-free ring,
//! then wakes the processing thread. Nothing else happens on the callback: no allocation,
//! no lock, no logging. The synthetic microphone is a clock thread doing the same.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait as _, StreamTrait as _};
use cpal::{FromSample, Sample as _, SizedSample};
use estrade_media::clock::spawn_clock;
use estrade_media::synthetic::{ToneBursts, unix_us_now};
use estrade_media::{FRAME_SAMPLES, SAMPLE_RATE};

use crate::device::{AudioDeviceInfo, DeviceError, Direction};
use crate::stream_config::{self, with_sample_type};

/// One second at the highest rates devices use: the processing thread wakes every
/// callback, so more than a few ms of backlog means it stopped.
const RING: usize = 192_000;
/// Stream creation may take this long (PulseAudio answers in milliseconds).
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(3);

/// Keeps a stream running; dropping it stops the stream.
pub(crate) enum StreamHandle {
    Cpal(
        #[expect(dead_code, reason = "held, never read: dropping it closes the device")]
        cpal::Stream,
        #[expect(dead_code, reason = "the stream's own connection, kept as long as it")] cpal::Host,
    ),
    Synthetic(
        #[expect(dead_code, reason = "held, never read: dropping it stops the clock")]
        SyntheticStop,
    ),
    #[cfg(target_os = "linux")]
    Pulse(
        #[expect(dead_code, reason = "held, never read: dropping it closes the stream")]
        crate::pulse_record::PulseRecord,
    ),
}

/// Stops a synthetic device's clock thread when dropped.
pub(crate) struct SyntheticStop(pub Arc<AtomicBool>);

impl Drop for SyntheticStop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What the callback shares with the rest (atomics only).
#[derive(Default)]
pub(crate) struct CaptureCounters {
    /// Samples the ring had no room for (the processing thread fell behind).
    pub overflowed: AtomicU64,
    /// From the sound reaching the device to the callback, as the device says, in µs.
    pub latency_us: AtomicU32,
}

pub(crate) struct CaptureStream {
    pub rate: u32,
    pub samples: rtrb::Consumer<f32>,
    pub counters: Arc<CaptureCounters>,
    /// Dropped with the stream: the device closes.
    pub _handle: StreamHandle,
}

/// Opens `device` (`None`: the synthetic tone) and starts it; `on_error` hears stream
/// failures (device unplugged), on a thread of the host's, never the audio callback's.
pub(crate) fn open(
    info: &AudioDeviceInfo,
    device: Option<cpal::Device>,
    host: cpal::Host,
    wake: Thread,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<CaptureStream, DeviceError> {
    let (producer, samples) = rtrb::RingBuffer::new(RING);
    let counters = Arc::new(CaptureCounters::default());
    let Some(device) = device else {
        let handle = synthetic(producer, wake)?;
        return Ok(CaptureStream {
            rate: SAMPLE_RATE,
            samples,
            counters,
            _handle: handle,
        });
    };
    // PulseAudio microphones through its own protocol (pulse_record.rs says why).
    #[cfg(target_os = "linux")]
    if let Some(name) = info.id.0.strip_prefix("pulseaudio:") {
        let mut on_error = on_error;
        let on_lost = move |why: String| {
            on_error(cpal::Error::with_message(
                cpal::ErrorKind::DeviceNotAvailable,
                why,
            ))
        };
        let (rate, record) =
            crate::pulse_record::open(info, name, producer, wake, counters.clone(), on_lost)?;
        drop((device, host));
        return Ok(CaptureStream {
            rate,
            samples,
            counters,
            _handle: StreamHandle::Pulse(record),
        });
    }
    let open_error = |source: cpal::Error| {
        if source.kind() == cpal::ErrorKind::PermissionDenied {
            DeviceError::PermissionDenied(info.id.clone())
        } else {
            DeviceError::Open {
                device: info.id.clone(),
                source,
            }
        }
    };
    let (config, format) = stream_config::choose(&device, Direction::Input).map_err(open_error)?;
    let rate = config.sample_rate;
    let callback = Callback {
        producer,
        channels: usize::from(config.channels.max(1)),
        wake,
        counters: counters.clone(),
    };
    let stream = with_sample_type!(format,
        T => build::<T>(&device, config, callback, on_error),
        format => return Err(DeviceError::UnsupportedFormat { device: info.id.clone(), format })
    )
    .map_err(open_error)?;
    stream.play().map_err(open_error)?;
    Ok(CaptureStream {
        rate,
        samples,
        counters,
        _handle: StreamHandle::Cpal(stream, host),
    })
}

/// What the capture callback does to a device buffer: interleaved samples of any format
/// and channel count → mono f32 (the channels' average). No allocation.
pub fn mono<T>(data: &[T], channels: usize) -> impl Iterator<Item = f32> + '_
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let scale = 1.0 / channels.max(1) as f32;
    data.chunks_exact(channels.max(1))
        .map(move |frame| frame.iter().map(|&s| f32::from_sample(s)).sum::<f32>() * scale)
}

struct Callback {
    producer: rtrb::Producer<f32>,
    channels: usize,
    wake: Thread,
    counters: Arc<CaptureCounters>,
}

impl Callback {
    /// Downmixes to mono into the ring. No allocation, no lock.
    fn take<T>(&mut self, data: &[T], latency: Duration)
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        let frames = data.len() / self.channels;
        let room = frames.min(self.producer.slots());
        if room < frames {
            self.counters
                .overflowed
                .fetch_add((frames - room) as u64, Ordering::Relaxed);
        }
        if let Ok(chunk) = self.producer.write_chunk_uninit(room) {
            let scale = 1.0 / self.channels as f32;
            chunk.fill_from_iter(
                data.chunks_exact(self.channels)
                    .map(|frame| frame.iter().map(|&s| f32::from_sample(s)).sum::<f32>() * scale),
            );
        }
        let latency_us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.counters
            .latency_us
            .store(latency_us, Ordering::Relaxed);
        self.wake.unpark();
    }
}

fn build<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut callback: Callback,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], info: &cpal::InputCallbackInfo| {
            let ts = info.timestamp();
            callback.take(data, ts.callback - ts.capture);
        },
        on_error,
        Some(OPEN_TIMEOUT),
    )
}

/// The synthetic microphone: tone bursts locked to the wall clock (as the engine's
/// `ToneBursts`, so latency stays measurable), 20 ms at a time from a clock thread.
fn synthetic(mut producer: rtrb::Producer<f32>, wake: Thread) -> Result<StreamHandle, DeviceError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let tone = ToneBursts::new(440.0);
    let (anchor, anchor_us) = (Instant::now(), unix_us_now());
    let mut frame = [0i16; FRAME_SAMPLES];
    spawn_clock(
        "estrade-synthetic-mic",
        Duration::from_millis(20),
        move |deadline| {
            if stopped.load(Ordering::Relaxed) {
                return ControlFlow::Break(());
            }
            let end_us = anchor_us + deadline.saturating_duration_since(anchor).as_micros() as u64;
            tone.fill(end_us, &mut frame);
            if let Ok(chunk) = producer.write_chunk_uninit(FRAME_SAMPLES.min(producer.slots())) {
                chunk.fill_from_iter(frame.iter().map(|&s| f32::from(s) / 32_768.0));
            }
            wake.unpark();
            ControlFlow::Continue(())
        },
    )
    .map_err(DeviceError::Thread)?;
    Ok(StreamHandle::Synthetic(SyntheticStop(stop)))
}
