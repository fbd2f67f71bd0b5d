//! The microphone's processing thread: takes the capture ring (device rate, mono), resamples
//! to 48 kHz, and for each 10 ms frame feeds the echo canceller every far-end frame the
//! speakers were given since, processes the frame (AEC, NS, AGC, HPF), measures its level
//! and voice activity, and hands 20 ms frames to the encoder.
//!
//! It outlives devices: switching microphones swaps the ring it reads (the new device is
//! opened before the old one closes), so the canceller stays converged and the encoder
//! sees one continuous stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use estrade_media::{
    AudioFrame, AudioLevel, AudioProcessor, AudioSource, FRAME_SAMPLES, LevelMeter, MonoResampler,
    PROCESSING_FRAME, ProcessingConfig, ProcessingFrame, ProcessingStats, SAMPLE_RATE, SourceEnded,
};
use tokio::sync::{mpsc, watch};

use crate::capture::CaptureStream;
use crate::device::DeviceError;
use crate::playout::PlayoutCounters;

/// 20 ms frames waiting for the encoder: beyond, it is not reading and frames are dropped.
const FRAMES_QUEUE: usize = 8;
/// The processing thread looks at its commands at least this often.
const IDLE_WAKE: Duration = Duration::from_millis(20);
/// Frames (10 ms) between delay hints and statistics.
const REPORT_EVERY: u32 = 100;

/// 20 ms of processed microphone, with whether it held a voice.
pub(crate) struct MicFrame {
    pcm: AudioFrame,
    voice: bool,
}

pub(crate) enum MicCommand {
    /// Read this device from now on (the previous one is drained, then closed).
    Attach(CaptureStream),
    /// Close the device (nothing more is captured).
    Detach,
    Configure(ProcessingConfig),
    /// Processed frames go here from now on (a previous subscriber's source ends).
    Subscribe(mpsc::Sender<MicFrame>),
}

/// What the processing thread publishes.
pub(crate) struct MicShared {
    pub levels: watch::Sender<AudioLevel>,
    pub stats: Mutex<ProcessingStats>,
    /// 20 ms frames the encoder did not take in time.
    pub frames_dropped: AtomicU64,
    pub config: Mutex<ProcessingConfig>,
}

pub(crate) struct MicThread {
    pub commands: Sender<MicCommand>,
    pub thread: Thread,
    pub shared: Arc<MicShared>,
}

pub(crate) fn spawn(
    apm: Box<dyn AudioProcessor>,
    reference: rtrb::Consumer<f32>,
    playout: Arc<PlayoutCounters>,
) -> Result<MicThread, DeviceError> {
    let config = apm.config();
    let (commands, rx) = crossbeam_channel::bounded(16);
    let shared = Arc::new(MicShared {
        levels: watch::Sender::new(AudioLevel::SILENT),
        stats: Mutex::new(ProcessingStats::default()),
        frames_dropped: AtomicU64::new(0),
        config: Mutex::new(config),
    });
    let mut worker = Processing {
        commands: rx,
        capture: None,
        to_48k: passthrough(),
        input: vec![0.0; 8192],
        reference,
        render_frame: [0.0; PROCESSING_FRAME],
        apm,
        meter: LevelMeter::new(),
        pending: [0; FRAME_SAMPLES],
        half: false,
        voice: false,
        out: None,
        shared: shared.clone(),
        playout,
        frames: 0,
    };
    let handle = std::thread::Builder::new()
        .name("estrade-microphone".into())
        .spawn(move || worker.run())
        .map_err(DeviceError::Thread)?;
    Ok(MicThread {
        commands,
        thread: handle.thread().clone(),
        shared,
    })
}

fn passthrough() -> MonoResampler {
    MonoResampler::new(SAMPLE_RATE, SAMPLE_RATE, PROCESSING_FRAME, false)
        .expect("equal rates need no filter")
}

struct Processing {
    commands: Receiver<MicCommand>,
    capture: Option<CaptureStream>,
    to_48k: MonoResampler,
    input: Vec<f32>,
    reference: rtrb::Consumer<f32>,
    render_frame: ProcessingFrame,
    apm: Box<dyn AudioProcessor>,
    meter: LevelMeter,
    /// The 20 ms frame being filled, and whether its first half is in.
    pending: AudioFrame,
    half: bool,
    voice: bool,
    out: Option<mpsc::Sender<MicFrame>>,
    shared: Arc<MicShared>,
    playout: Arc<PlayoutCounters>,
    frames: u32,
}

impl Processing {
    fn run(&mut self) {
        loop {
            std::thread::park_timeout(IDLE_WAKE);
            loop {
                match self.commands.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(TryRecvError::Empty) => break,
                    // The devices were dropped.
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if self.capture.is_some() {
                self.drain_capture();
            } else {
                // No microphone: the far end is not needed; keep the ring fresh.
                let n = self.reference.slots();
                if let Ok(c) = self.reference.read_chunk(n) {
                    c.commit_all();
                }
            }
        }
    }

    fn handle(&mut self, command: MicCommand) {
        match command {
            MicCommand::Attach(stream) => {
                // What the old device captured until now still counts.
                self.drain_capture();
                self.to_48k = if stream.rate == SAMPLE_RATE {
                    passthrough()
                } else {
                    match MonoResampler::new(stream.rate, SAMPLE_RATE, PROCESSING_FRAME, false) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(error = %e, rate = stream.rate, "microphone not usable");
                            return;
                        }
                    }
                };
                if self.input.len() < self.to_48k.max_needed() {
                    self.input.resize(self.to_48k.max_needed(), 0.0);
                }
                self.capture = Some(stream);
            }
            MicCommand::Detach => {
                self.capture = None;
                self.shared.levels.send_replace(AudioLevel::SILENT);
            }
            MicCommand::Configure(config) => {
                self.apm.configure(config);
                *lock(&self.shared.config) = config;
            }
            MicCommand::Subscribe(out) => self.out = Some(out),
        }
    }

    /// Processes every whole 10 ms the capture ring holds.
    fn drain_capture(&mut self) {
        loop {
            let need = self.to_48k.needed();
            let Some(capture) = &mut self.capture else {
                return;
            };
            let Ok(chunk) = capture.samples.read_chunk(need) else {
                return;
            };
            let (a, b) = chunk.as_slices();
            self.input[..a.len()].copy_from_slice(a);
            self.input[a.len()..need].copy_from_slice(b);
            chunk.commit_all();
            let capture_latency = capture.counters.latency_us.load(Ordering::Relaxed);
            let mut frame = [0f32; PROCESSING_FRAME];
            self.to_48k.process(&self.input[..need], &mut frame);
            self.process(&mut frame, capture_latency);
        }
    }

    fn process(&mut self, frame: &mut ProcessingFrame, capture_latency_us: u32) {
        while let Ok(chunk) = self.reference.read_chunk(PROCESSING_FRAME) {
            let (a, b) = chunk.as_slices();
            self.render_frame[..a.len()].copy_from_slice(a);
            self.render_frame[a.len()..].copy_from_slice(b);
            chunk.commit_all();
            self.apm.analyze_render(&self.render_frame);
        }
        self.frames = self.frames.wrapping_add(1);
        if self.frames % REPORT_EVERY == 1 {
            let output = self.playout.latency_us.load(Ordering::Relaxed);
            let hint_ms = (u64::from(output) + u64::from(capture_latency_us)) / 1000;
            self.apm.set_stream_delay_ms(hint_ms as u32);
            *lock(&self.shared.stats) = self.apm.stats();
        }
        self.apm.process_capture(frame);
        let level = self.meter.measure(frame);
        self.shared.levels.send_replace(level);
        let at = if self.half { PROCESSING_FRAME } else { 0 };
        for (o, &s) in self.pending[at..at + PROCESSING_FRAME]
            .iter_mut()
            .zip(frame.iter())
        {
            *o = (s * 32_768.0).clamp(-32_768.0, 32_767.0) as i16;
        }
        self.voice |= level.voice;
        if self.half {
            self.emit();
        }
        self.half = !self.half;
    }

    fn emit(&mut self) {
        let frame = MicFrame {
            pcm: self.pending,
            voice: std::mem::take(&mut self.voice),
        };
        if let Some(out) = &self.out {
            match out.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.shared.frames_dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.out = None,
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere while holding it leaves nothing half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The processed microphone as the engine publishes it: 20 ms frames, each with whether
/// it held a voice (for "you are muted"). Ends when the devices are dropped, or when
/// another source is taken from them.
pub struct MicrophoneSource {
    frames: mpsc::Receiver<MicFrame>,
    voice: Option<bool>,
    shared: Arc<MicShared>,
}

/// Frames that may wait behind the one being read: beyond, the oldest are dropped (a
/// reader that fell behind once must not carry that delay for the rest of the call).
const STALE_FRAMES: usize = 1;

impl MicrophoneSource {
    pub(crate) fn new(frames: mpsc::Receiver<MicFrame>, shared: Arc<MicShared>) -> Self {
        Self {
            frames,
            voice: None,
            shared,
        }
    }
}

impl AudioSource for MicrophoneSource {
    async fn next_frame(&mut self, out: &mut AudioFrame) -> Result<(), SourceEnded> {
        let mut frame = self.frames.recv().await.ok_or_else(|| {
            SourceEnded("the microphone was closed, or taken by another source".into())
        })?;
        // Behind (the encoder was busy, or started after the device): skip to the newest,
        // as a device whose buffer overran, instead of sending old audio late forever.
        while self.frames.len() > STALE_FRAMES {
            let Ok(newer) = self.frames.try_recv() else {
                break;
            };
            frame = MicFrame {
                voice: frame.voice || newer.voice,
                ..newer
            };
            self.shared.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        *out = frame.pcm;
        self.voice = Some(frame.voice);
        Ok(())
    }

    fn voice_activity(&self) -> Option<bool> {
        self.voice
    }
}

/// A new subscription's channel.
pub(crate) fn subscription() -> (mpsc::Sender<MicFrame>, mpsc::Receiver<MicFrame>) {
    mpsc::channel(FRAMES_QUEUE)
}
