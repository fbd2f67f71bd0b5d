//! The speakers' stream: one output callback pulls the whole mix (every remote microphone,
//! through its jitter buffer and decoder, and local sounds), hands exactly what it mixed to
//! the echo canceller's reference ring, resamples to the device's rate and writes every
//! channel in the device's sample format.
//!
//! The mix outlives any one stream: it sits behind a mutex that the active callback takes
//! with `try_lock` (one atomic operation, never waits). Only during a device switch could
//! two callbacks meet there; the one that misses plays silence for that buffer. A device
//! that vanished mid-callback cannot take the mix with it.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait as _, StreamTrait as _};
use cpal::{FromSample, SizedSample};
use estrade_media::clock::spawn_clock;
use estrade_media::{FRAME_SAMPLES, MixFrame, Mixer, MonoResampler, SAMPLE_RATE};

use crate::capture::{OPEN_TIMEOUT, StreamHandle, SyntheticStop};
use crate::device::{AudioDeviceInfo, DeviceError, Direction};
use crate::stream_config::{self, with_sample_type};

/// What the speakers play, whichever device that is.
pub(crate) struct PlayoutState {
    pub mixer: Mixer,
    /// The far end as mixed, 48 kHz mono, for the echo canceller.
    pub reference: rtrb::Producer<f32>,
    mix: MixFrame,
}

impl PlayoutState {
    pub fn new(mixer: Mixer, reference: rtrb::Producer<f32>) -> Self {
        Self {
            mixer,
            reference,
            mix: [0.0; FRAME_SAMPLES],
        }
    }
}

pub(crate) type SharedPlayout = Arc<Mutex<PlayoutState>>;

/// Shared with the callback: atomics only.
#[derive(Default)]
pub(crate) struct PlayoutCounters {
    /// From the mix being made to it leaving the device, in µs (our buffers and the
    /// device's): half of the echo delay hint.
    pub latency_us: AtomicU32,
    /// Reference samples the canceller's ring had no room for (no microphone open).
    pub reference_dropped: AtomicU64,
    /// Buffers played silent because another stream held the mix (device switches).
    pub missed: AtomicU64,
}

pub(crate) struct OutputStream {
    /// Tells the callback to stop using the mix (a new stream takes over).
    pub retired: Arc<AtomicBool>,
    /// Until set, the callback plays silence without touching the mix (a new stream
    /// waiting for the old one to let go).
    pub active: Arc<AtomicBool>,
    /// The device has asked for data at least once.
    pub started: Arc<AtomicBool>,
    /// Dropped with the stream: the device closes.
    pub _handle: StreamHandle,
}

/// Most device-rate samples one 20 ms mix becomes (384 kHz devices).
const MAX_CHUNK: usize = 384_000 / 100;

/// One output stream's own state: the resampler to the device's rate and what is waiting.
struct Render {
    playout: SharedPlayout,
    retired: Arc<AtomicBool>,
    active: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
    counters: Arc<PlayoutCounters>,
    channels: usize,
    rate: u32,
    to_device: MonoResampler,
    /// Mixed (48 kHz) samples not yet resampled.
    mixed: Vec<f32>,
    mixed_len: usize,
    /// Device-rate samples not yet written.
    fifo: Vec<f32>,
    fifo_len: usize,
    chunk: Vec<f32>,
    /// When the next mix block will start playing, smoothed (the device's clock as seen
    /// from callbacks that wake with jitter).
    next_block_at: Option<Instant>,
}

impl Render {
    fn new(
        playout: SharedPlayout,
        flags: &OutputFlags,
        counters: Arc<PlayoutCounters>,
        channels: usize,
        rate: u32,
    ) -> Result<Self, DeviceError> {
        let chunk = (rate / 100) as usize;
        let to_device =
            MonoResampler::new(SAMPLE_RATE, rate, chunk, false).map_err(DeviceError::Resampler)?;
        let mixed = vec![0.0; to_device.max_needed() + FRAME_SAMPLES];
        Ok(Self {
            playout,
            retired: flags.retired.clone(),
            active: flags.active.clone(),
            started: flags.started.clone(),
            counters,
            channels: channels.max(1),
            rate,
            mixed,
            mixed_len: 0,
            fifo: vec![0.0; 2 * MAX_CHUNK.max(chunk) + 8192],
            fifo_len: 0,
            chunk: vec![0.0; chunk],
            to_device,
            next_block_at: None,
        })
    }

    /// Fills `data` (interleaved, every channel the same). `latency`: until its first
    /// sample is heard, as the device reports it. No allocation, no waiting lock.
    fn fill<T>(&mut self, data: &mut [T], latency: Duration)
    where
        T: SizedSample + FromSample<f32>,
    {
        let frames = data.len() / self.channels;
        let silence = T::from_sample(0.0f32);
        self.started.store(true, Ordering::Relaxed);
        if self.retired.load(Ordering::Relaxed) || !self.active.load(Ordering::Relaxed) {
            data.fill(silence);
            return;
        }
        // A second handle (an atomic increment): the guard must not borrow `self`.
        let shared = self.playout.clone();
        let Ok(mut playout) = shared.try_lock() else {
            self.counters.missed.fetch_add(1, Ordering::Relaxed);
            data.fill(silence);
            return;
        };
        let now = Instant::now();
        while self.fifo_len < frames {
            if !self.mix_more(&mut playout, now, latency) {
                break;
            }
        }
        drop(playout);
        let n = frames.min(self.fifo_len);
        for (frame, &s) in data.chunks_exact_mut(self.channels).zip(&self.fifo[..n]) {
            frame.fill(T::from_sample(s));
        }
        data[n * self.channels..].fill(silence);
        self.fifo.copy_within(n..self.fifo_len, 0);
        self.fifo_len -= n;
        let buffered = self.buffered();
        let total = u32::try_from((latency + buffered).as_micros()).unwrap_or(u32::MAX);
        self.counters.latency_us.store(total, Ordering::Relaxed);
    }

    /// What we hold ahead of the device: the FIFO and the mixed samples.
    fn buffered(&self) -> Duration {
        Duration::from_secs_f64(
            self.fifo_len as f64 / f64::from(self.rate)
                + self.mixed_len as f64 / f64::from(SAMPLE_RATE),
        )
    }

    /// Resamples 10 ms more into the FIFO, mixing 20 ms first when needed. False if the
    /// FIFO is full (nothing to do).
    fn mix_more(&mut self, playout: &mut PlayoutState, now: Instant, latency: Duration) -> bool {
        let chunk = self.chunk.len();
        if self.fifo_len + chunk > self.fifo.len() {
            return false;
        }
        while self.mixed_len < self.to_device.needed() {
            let at = self.block_time(now + latency + self.buffered());
            let PlayoutState {
                mixer,
                reference,
                mix,
            } = playout;
            mixer.render(at, mix);
            let room = FRAME_SAMPLES.min(reference.slots());
            if let Ok(c) = reference.write_chunk_uninit(room) {
                c.fill_from_iter(mix.iter().copied());
            }
            if room < FRAME_SAMPLES {
                self.counters
                    .reference_dropped
                    .fetch_add((FRAME_SAMPLES - room) as u64, Ordering::Relaxed);
            }
            self.mixed[self.mixed_len..self.mixed_len + FRAME_SAMPLES].copy_from_slice(&mix[..]);
            self.mixed_len += FRAME_SAMPLES;
        }
        let used = self
            .to_device
            .process(&self.mixed[..self.mixed_len], &mut self.chunk)
            .min(self.mixed_len);
        self.mixed.copy_within(used..self.mixed_len, 0);
        self.mixed_len -= used;
        self.fifo[self.fifo_len..self.fifo_len + chunk].copy_from_slice(&self.chunk);
        self.fifo_len += chunk;
        true
    }

    /// When a block measured to start at `measured` starts, on a clock that advances 20 ms
    /// a block and follows the measurements slowly (callback wake-up jitter is not the
    /// device's clock); a jump of more than 40 ms (a stall, a new device) is taken at once.
    fn block_time(&mut self, measured: Instant) -> Instant {
        let at = match self.next_block_at {
            Some(predicted) => {
                let (ahead, behind) = (
                    predicted.saturating_duration_since(measured),
                    measured.saturating_duration_since(predicted),
                );
                if ahead.max(behind) > Duration::from_millis(40) {
                    measured
                } else if ahead > behind {
                    predicted - ahead / 32
                } else {
                    predicted + behind / 32
                }
            }
            None => measured,
        };
        self.next_block_at = Some(at + Duration::from_millis(20));
        at
    }
}

struct OutputFlags {
    retired: Arc<AtomicBool>,
    active: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
}

/// Opens `device` (`None`: the synthetic silent output) playing the shared mix, at once
/// if `active`, else once told (`OutputStream::active`).
pub(crate) fn open(
    info: &AudioDeviceInfo,
    device: Option<cpal::Device>,
    host: cpal::Host,
    playout: SharedPlayout,
    counters: Arc<PlayoutCounters>,
    active: bool,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<OutputStream, DeviceError> {
    let flags = OutputFlags {
        retired: Arc::default(),
        active: Arc::new(AtomicBool::new(active)),
        started: Arc::default(),
    };
    let Some(device) = device else {
        let render = Render::new(playout, &flags, counters, 1, SAMPLE_RATE)?;
        return Ok(OutputStream {
            retired: flags.retired,
            active: flags.active,
            started: flags.started,
            _handle: synthetic(render)?,
        });
    };
    let open_error = |source: cpal::Error| DeviceError::Open {
        device: info.id.clone(),
        source,
    };
    // 10 ms device buffers: PulseAudio then keeps 20 ms queued (tlength = 2 buffers).
    let (config, format) = stream_config::choose(&device, Direction::Output).map_err(open_error)?;
    let (rate, channels) = (config.sample_rate, usize::from(config.channels));
    let render = Render::new(playout, &flags, counters, channels, rate)?;
    let stream = with_sample_type!(format,
        T => build::<T>(&device, config, render, on_error),
        format => return Err(DeviceError::UnsupportedFormat { device: info.id.clone(), format })
    )
    .map_err(open_error)?;
    stream.play().map_err(open_error)?;
    Ok(OutputStream {
        retired: flags.retired,
        active: flags.active,
        started: flags.started,
        _handle: StreamHandle::Cpal(stream, host),
    })
}

fn build<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut render: Render,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    device.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], info: &cpal::OutputCallbackInfo| {
            let ts = info.timestamp();
            render.fill(data, ts.playback - ts.callback);
        },
        on_error,
        Some(OPEN_TIMEOUT),
    )
}

/// The silent output: a clock thread that takes 10 ms of the mix every 10 ms, as a sound
/// card would, and plays it nowhere.
fn synthetic(mut render: Render) -> Result<StreamHandle, DeviceError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let mut buffer = [0f32; FRAME_SAMPLES / 2];
    spawn_clock(
        "estrade-synthetic-speaker",
        Duration::from_millis(10),
        move |_| {
            if stopped.load(Ordering::Relaxed) {
                return ControlFlow::Break(());
            }
            render.fill(&mut buffer, Duration::ZERO);
            ControlFlow::Continue(())
        },
    )
    .map_err(DeviceError::Thread)?;
    Ok(StreamHandle::Synthetic(SyntheticStop(stop)))
}
