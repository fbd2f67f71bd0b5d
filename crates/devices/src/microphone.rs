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
use std::time::{Duration, Instant};

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
    /// 10 ms frames processed late (this thread had fallen behind the microphone).
    pub frames_late: AtomicU64,
    /// How much less audio the open microphone has delivered than the time it has been
    /// open, in µs: audio lost before it reached us (the system dropped it on a busy
    /// machine) and, slowly, the device's clock against ours.
    pub shortfall_us: AtomicU64,
    pub config: Mutex<ProcessingConfig>,
}

impl MicShared {
    fn new(config: ProcessingConfig) -> Self {
        Self {
            levels: watch::Sender::new(AudioLevel::SILENT),
            stats: Mutex::new(ProcessingStats::default()),
            frames_dropped: AtomicU64::new(0),
            frames_late: AtomicU64::new(0),
            shortfall_us: AtomicU64::new(0),
            config: Mutex::new(config),
        }
    }
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
    let shared = Arc::new(MicShared::new(config));
    let mut worker = Processing::new(rx, apm, reference, playout, shared.clone());
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
    /// When the current microphone was attached, and how many samples it gave since.
    attached_at: Instant,
    captured: u64,
}

impl Processing {
    fn new(
        commands: Receiver<MicCommand>,
        apm: Box<dyn AudioProcessor>,
        reference: rtrb::Consumer<f32>,
        playout: Arc<PlayoutCounters>,
        shared: Arc<MicShared>,
    ) -> Self {
        Self {
            commands,
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
            shared,
            playout,
            frames: 0,
            attached_at: Instant::now(),
            captured: 0,
        }
    }

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
                self.attached_at = Instant::now();
                self.captured = 0;
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
            self.captured += need as u64;
            let rate = capture.rate;
            let capture_latency = capture.counters.latency_us.load(Ordering::Relaxed);
            // Microphone frames still waiting after this one (the thread fell behind).
            let behind = capture.samples.slots() / need.max(1);
            let mut frame = [0f32; PROCESSING_FRAME];
            self.to_48k.process(&self.input[..need], &mut frame);
            if self.frames.is_multiple_of(REPORT_EVERY) {
                // What the device delivered: processed, and still in the ring.
                let delivered = self.captured + (behind * need) as u64;
                let open_us = self.attached_at.elapsed().as_micros() as u64;
                let got_us = delivered.saturating_mul(1_000_000) / u64::from(rate.max(1));
                self.shared
                    .shortfall_us
                    .store(open_us.saturating_sub(got_us), Ordering::Relaxed);
            }
            self.process(&mut frame, capture_latency, behind);
        }
    }

    /// `behind`: microphone frames waiting after this one. As many far-end frames stay
    /// queued: when this thread catches up after a stall, both streams piled up, and handing
    /// the canceller the whole far-end backlog before the first late microphone frame would
    /// make the echo look up to the stall's length earlier than it is (on a simulated 1 s
    /// stall the echo then came back for a second: the test below).
    fn process(&mut self, frame: &mut ProcessingFrame, capture_latency_us: u32, behind: usize) {
        if behind > 0 {
            self.shared.frames_late.fetch_add(1, Ordering::Relaxed);
        }
        let queued = self.reference.slots() / PROCESSING_FRAME;
        for _ in 0..queued.saturating_sub(behind) {
            let Ok(chunk) = self.reference.read_chunk(PROCESSING_FRAME) else {
                break;
            };
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use estrade_media::SonoraProcessor;

    use super::*;
    use crate::capture::{CaptureCounters, StreamHandle, SyntheticStop};

    /// Deterministic speech-like noise: 400 ms on, 400 on, 400 off.
    fn far_end(k: usize, seed: &mut u32, low: &mut f32) -> ProcessingFrame {
        std::array::from_fn(|_| {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let white = (*seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
            *low += 0.2 * (white - *low);
            if (k / 40) % 3 != 2 { 0.3 * *low } else { 0.0 }
        })
    }

    fn energy_db(samples: impl Iterator<Item = f32>) -> f64 {
        let (mut e, mut n) = (0.0f64, 0usize);
        for s in samples {
            e += f64::from(s) * f64::from(s);
            n += 1;
        }
        10.0 * (e / n.max(1) as f64 + 1e-20).log10()
    }

    /// The thread stops for a second (a busy machine) while the speakers and the microphone
    /// go on; when it catches up, the far end is handed over in step with the microphone
    /// frames it explains, and the echo stays cancelled through the catch-up.
    #[test]
    fn catching_up_after_a_stall_keeps_the_echo_cancelled() {
        const ECHO_FRAMES: usize = 6;
        const STALL: std::ops::Range<usize> = 300..400;
        let (reference_tx, reference_rx) = rtrb::RingBuffer::new(48_000 * 2);
        let (capture_tx, capture_rx) = rtrb::RingBuffer::new(48_000 * 2);
        let (mut reference_tx, mut capture_tx) = (reference_tx, capture_tx);
        let (_commands, commands_rx) = crossbeam_channel::bounded(1);
        let shared = Arc::new(MicShared::new(ProcessingConfig::ALL));
        let mut worker = Processing::new(
            commands_rx,
            Box::new(SonoraProcessor::new(ProcessingConfig::ALL)),
            reference_rx,
            Arc::new(PlayoutCounters::default()),
            shared.clone(),
        );
        worker.capture = Some(CaptureStream {
            rate: SAMPLE_RATE,
            samples: capture_rx,
            counters: Arc::new(CaptureCounters::default()),
            _handle: StreamHandle::Synthetic(SyntheticStop(Arc::new(AtomicBool::new(false)))),
        });
        let (out, mut processed) = mpsc::channel(1000);
        worker.out = Some(out);

        let (mut seed, mut low) = (1u32, 0.0f32);
        let mut played = Vec::new();
        let mut heard = Vec::new();
        for k in 0..700 {
            // Every 10 ms the speakers take a frame and the microphone delivers one.
            let far = far_end(k, &mut seed, &mut low);
            played.push(far);
            let mic: ProcessingFrame = match k.checked_sub(ECHO_FRAMES) {
                Some(j) => std::array::from_fn(|i| 0.3 * played[j][i]),
                None => [0.0; PROCESSING_FRAME],
            };
            heard.push(mic);
            for s in far {
                reference_tx.push(s).unwrap();
            }
            for s in mic {
                capture_tx.push(s).unwrap();
            }
            if !STALL.contains(&k) {
                worker.drain_capture();
            }
        }
        let mut sent = Vec::new();
        while let Ok(frame) = processed.try_recv() {
            sent.extend(frame.pcm.iter().map(|&s| f32::from(s) / 32_768.0));
        }
        assert_eq!(sent.len(), 700 * PROCESSING_FRAME);
        let window = |from: usize, to: usize| from * PROCESSING_FRAME..to * PROCESSING_FRAME;
        let removed = |from, to| {
            let mic: Vec<f32> = heard.iter().flatten().copied().collect();
            energy_db(mic[window(from, to)].iter().copied())
                - energy_db(sent[window(from, to)].iter().copied())
        };
        assert!(
            removed(200, 300) > 30.0,
            "converged before: {:.1} dB",
            removed(200, 300)
        );
        // The frames processed late, in a burst, and the second after.
        for (from, to) in [(300, 400), (400, 500)] {
            let r = removed(from, to);
            assert!(
                r > 30.0,
                "frames {from}..{to}: only {r:.1} dB of echo removed"
            );
        }
        assert!(shared.frames_late.load(Ordering::Relaxed) >= 99);
    }
}
