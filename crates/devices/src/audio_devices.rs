//! [`AudioDevices`]: the microphone and the speakers of one app, and the thread that owns
//! their streams. The device thread opens and switches devices, lists them once a second
//! (cpal has no hot-plug callback) and falls back to the system default when the device in
//! use goes away; it reports through a bounded stream of [`DeviceEvent`]s.
//!
//! ```text
//! mic callback ─ring─▶ processing thread (→48 kHz, AEC/NS/AGC, level) ─20 ms─▶ MicrophoneSource ─▶ engine
//!                          ▲ far-end reference ring (what the speakers were given)
//! remote RemoteAudio ─▶ mixer ─▶ speaker callback (mix → reference, →device rate, channels)
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use estrade_engine::{AudioOutput, ParticipantIdentity, RemoteAudio, TrackSid};
use estrade_media::{
    AudioLevel, AudioProcessor, MixerInput, ProcessingConfig, ProcessingStats, SonoraProcessor,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::capture;
use crate::device::{self, AudioDeviceId, AudioDeviceInfo, DeviceChoice, DeviceError, Direction};
use crate::microphone::{self, MicCommand, MicThread, MicrophoneSource};
use crate::playout::{self, OutputStream, PlayoutCounters, PlayoutState, SharedPlayout};
use crate::sounds;
use crate::watch::DeviceWatch;

/// How often the device list is read for changes.
const POLL: Duration = Duration::from_secs(1);
/// Device events waiting for the application; beyond, they are counted as missed.
const EVENTS: usize = 64;
/// A replaced output is closed this long after the new one took over.
const CLOSE_AFTER: Duration = Duration::from_millis(300);
/// A new output has this long to start asking for data before it takes over anyway.
const SWITCH_WAIT: Duration = Duration::from_secs(1);
/// One second of far-end reference (48 kHz mono).
const REFERENCE_RING: usize = 48_000;

/// What happened to the devices, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DeviceEvent {
    /// Devices were plugged in or unplugged, or a system default moved. `devices` is the
    /// whole list now.
    DevicesChanged {
        added: Vec<AudioDeviceInfo>,
        removed: Vec<AudioDeviceInfo>,
        devices: Vec<AudioDeviceInfo>,
    },
    /// The microphone or speaker in use is now `device`.
    Switched {
        direction: Direction,
        device: AudioDeviceInfo,
        reason: SwitchReason,
    },
    /// The device in use failed and no other could be opened: nothing is captured (or
    /// played) until one is chosen.
    Lost {
        direction: Direction,
        device: AudioDeviceId,
        error: String,
    },
    /// `count` events were not kept because the application did not read them in time.
    Missed { count: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchReason {
    /// The application chose it.
    Chosen,
    /// It became the system default, and the choice was "default".
    DefaultChanged,
    /// The device in use (`lost`) went away: this is the system default.
    FellBack { lost: AudioDeviceId },
}

pub type DeviceEvents = mpsc::Receiver<DeviceEvent>;

/// The app's audio devices. Cheap to clone; the last clone dropped closes everything.
#[derive(Clone)]
pub struct AudioDevices {
    inner: Arc<Inner>,
}

struct Inner {
    control: Sender<Control>,
    mic: MicThread,
    mixer: MixerInput,
    counters: Arc<PlayoutCounters>,
    test_sound: Arc<[f32]>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Shutdown);
    }
}

type Reply<T> = oneshot::Sender<Result<T, DeviceError>>;

enum Control {
    List(Reply<Vec<AudioDeviceInfo>>),
    Use {
        direction: Direction,
        choice: Option<DeviceChoice>,
        reply: Reply<Option<AudioDeviceInfo>>,
    },
    /// A stream's error callback fired (`generation` tells which stream).
    Failed {
        direction: Direction,
        generation: u64,
        error: cpal::Error,
    },
    Shutdown,
}

impl AudioDevices {
    /// Starts the device thread and the processing thread (WebRTC's processing through
    /// sonora, stages as `config` says); no device is open yet.
    pub fn start(config: ProcessingConfig) -> Result<(AudioDevices, DeviceEvents), DeviceError> {
        Self::start_with(Box::new(SonoraProcessor::new(config)))
    }

    /// The same with another processing chain (another implementation, or one that
    /// records what it is given, for benchmarks).
    pub fn start_with(
        processor: Box<dyn AudioProcessor>,
    ) -> Result<(AudioDevices, DeviceEvents), DeviceError> {
        let (reference_tx, reference_rx) = rtrb::RingBuffer::new(REFERENCE_RING);
        let counters = Arc::new(PlayoutCounters::default());
        let mic = microphone::spawn(processor, reference_rx, counters.clone())?;
        let (mixer, mix) = estrade_media::mixer();
        let playout = Arc::new(std::sync::Mutex::new(PlayoutState::new(mix, reference_tx)));
        let (control, control_rx) = crossbeam_channel::bounded(64);
        let (events_tx, events) = mpsc::channel(EVENTS);
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = DeviceThread {
            requests: control_rx,
            me: control.clone(),
            events: events_tx,
            missed: 0,
            mic_commands: mic.commands.clone(),
            mic_thread: mic.thread.clone(),
            playout,
            counters: counters.clone(),
            mic: None,
            speaker: None,
            closing: None,
            generation: 0,
        };
        std::thread::Builder::new()
            .name("estrade-audio-devices".into())
            .spawn(move || thread.run(ready_tx))
            .map_err(DeviceError::Thread)?;
        ready.recv().map_err(|_| DeviceError::Stopped)??;
        let inner = Inner {
            control,
            mic,
            mixer,
            counters,
            test_sound: sounds::speaker_test(),
        };
        Ok((
            AudioDevices {
                inner: Arc::new(inner),
            },
            events,
        ))
    }

    /// Every input and output, the system defaults marked, synthetic ones last.
    pub async fn list(&self) -> Result<Vec<AudioDeviceInfo>, DeviceError> {
        self.ask(Control::List).await
    }

    /// Captures from `choice` (`None` closes the microphone: the device is released).
    /// Switching keeps the processing converged and the encoder's stream continuous.
    pub async fn use_microphone(
        &self,
        choice: Option<DeviceChoice>,
    ) -> Result<Option<AudioDeviceInfo>, DeviceError> {
        self.ask(|reply| Control::Use {
            direction: Direction::Input,
            choice,
            reply,
        })
        .await
    }

    /// Plays to `choice` (`None` closes the output; remote audio then waits).
    pub async fn use_speaker(
        &self,
        choice: Option<DeviceChoice>,
    ) -> Result<Option<AudioDeviceInfo>, DeviceError> {
        self.ask(|reply| Control::Use {
            direction: Direction::Output,
            choice,
            reply,
        })
        .await
    }

    async fn ask<T>(&self, request: impl FnOnce(Reply<T>) -> Control) -> Result<T, DeviceError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .control
            .send(request(reply))
            .map_err(|_| DeviceError::Stopped)?;
        answer.await.map_err(|_| DeviceError::Stopped)?
    }

    /// The processed microphone for the engine to publish. Taking a new one ends the
    /// previous one.
    pub fn microphone_source(&self) -> MicrophoneSource {
        let (tx, rx) = microphone::subscription();
        let _ = self.inner.mic.commands.send(MicCommand::Subscribe(tx));
        self.inner.mic.thread.unpark();
        MicrophoneSource::new(rx, self.inner.mic.shared.clone())
    }

    /// The processed microphone's level and voice activity, every 10 ms (latest wins).
    pub fn levels(&self) -> watch::Receiver<AudioLevel> {
        self.inner.mic.shared.levels.subscribe()
    }

    /// Turns processing stages on or off (the canceller then converges again).
    pub fn set_processing(&self, config: ProcessingConfig) {
        let _ = self.inner.mic.commands.send(MicCommand::Configure(config));
        self.inner.mic.thread.unpark();
    }

    pub fn processing(&self) -> (ProcessingConfig, ProcessingStats) {
        let shared = &self.inner.mic.shared;
        let config = *shared.config.lock().unwrap_or_else(|e| e.into_inner());
        let stats = *shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        (config, stats)
    }

    /// Where the engine plays remote microphones: the speakers' mix.
    pub fn output(&self) -> Arc<dyn AudioOutput> {
        Arc::new(SpeakerOutput {
            mixer: self.inner.mixer.clone(),
        })
    }

    /// Plays the speaker test sound (about a second) into the mix. The echo canceller
    /// hears it too: playing it before a class converges it.
    pub fn play_test_sound(&self) -> Result<(), estrade_media::MixerFull> {
        self.inner.mixer.play_sound(self.inner.test_sound.clone())
    }

    /// Plays `samples` (48 kHz mono, −1.0..=1.0) once into the mix: notification sounds,
    /// recorded speech in tests.
    pub fn play_sound(&self, samples: Arc<[f32]>) -> Result<(), estrade_media::MixerFull> {
        self.inner.mixer.play_sound(samples)
    }

    /// Counters for diagnostics.
    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            output_latency: Duration::from_micros(
                self.inner.counters.latency_us.load(Relaxed).into(),
            ),
            output_missed_buffers: self.inner.counters.missed.load(Relaxed),
            microphone_frames_dropped: self.inner.mic.shared.frames_dropped.load(Relaxed),
            processing_frames_late: self.inner.mic.shared.frames_late.load(Relaxed),
            reference_samples_dropped: self.inner.counters.reference_dropped.load(Relaxed),
            microphone_shortfall: Duration::from_micros(
                self.inner.mic.shared.shortfall_us.load(Relaxed),
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceStats {
    /// From the mix to the speaker, our buffers and the device's.
    pub output_latency: Duration,
    /// Output buffers played silent during device switches.
    pub output_missed_buffers: u64,
    /// Microphone frames the encoder did not take in time (or skipped to catch up).
    pub microphone_frames_dropped: u64,
    /// 10 ms frames the processing thread took late, catching up (a busy machine).
    pub processing_frames_late: u64,
    /// Far-end samples the echo canceller's queue had no room for (its thread stopped
    /// reading): the canceller then loses its alignment.
    pub reference_samples_dropped: u64,
    /// How much less audio the microphone delivered than the time it has been open: audio
    /// the system lost before it reached us (each jump moves the echo for the canceller).
    pub microphone_shortfall: Duration,
}

struct SpeakerOutput {
    mixer: MixerInput,
}

impl AudioOutput for SpeakerOutput {
    fn open(&self, participant: &ParticipantIdentity, track: &TrackSid, audio: RemoteAudio) {
        if let Err(e) = self.mixer.add_remote(audio) {
            tracing::warn!(%participant, %track, error = %e, "remote microphone not played");
        }
    }
}

/// What is open in one direction.
struct Active {
    choice: DeviceChoice,
    device: AudioDeviceInfo,
    generation: u64,
}

struct DeviceThread {
    requests: Receiver<Control>,
    me: Sender<Control>,
    events: mpsc::Sender<DeviceEvent>,
    missed: u64,
    mic_commands: Sender<MicCommand>,
    mic_thread: std::thread::Thread,
    playout: SharedPlayout,
    counters: Arc<PlayoutCounters>,
    mic: Option<Active>,
    speaker: Option<(Active, OutputStream)>,
    /// A replaced output, and when to close it.
    closing: Option<(Instant, OutputStream)>,
    generation: u64,
}

impl DeviceThread {
    fn run(mut self, ready: std::sync::mpsc::Sender<Result<(), DeviceError>>) {
        let host = match device::host() {
            Ok(host) => host,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut watch = DeviceWatch::new(device::list(&host).unwrap_or_default());
        let _ = ready.send(Ok(()));
        let mut next_poll = Instant::now() + POLL;
        loop {
            let wake = self
                .closing
                .as_ref()
                .map_or(next_poll, |(at, _)| (*at).min(next_poll));
            match self
                .requests
                .recv_timeout(wake.saturating_duration_since(Instant::now()))
            {
                Ok(Control::List(reply)) => {
                    let _ = reply.send(device::list(&host));
                }
                Ok(Control::Use {
                    direction,
                    choice,
                    reply,
                }) => {
                    let result = self.switch(&host, direction, choice, SwitchReason::Chosen);
                    let _ = reply.send(result);
                }
                Ok(Control::Failed {
                    direction,
                    generation,
                    error,
                }) => self.failed(&host, direction, generation, &error),
                Ok(Control::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if self.closing.as_ref().is_some_and(|(at, _)| *at <= now) {
                self.closing = None;
            }
            if now >= next_poll {
                self.poll(&host, &mut watch);
                next_poll = now + POLL;
            }
        }
        let _ = self.mic_commands.send(MicCommand::Detach);
        self.mic_thread.unpark();
    }

    /// Opens `choice` for `direction` (before closing what was open), or closes.
    fn switch(
        &mut self,
        host: &cpal::Host,
        direction: Direction,
        choice: Option<DeviceChoice>,
        reason: SwitchReason,
    ) -> Result<Option<AudioDeviceInfo>, DeviceError> {
        let Some(choice) = choice else {
            match direction {
                Direction::Input => {
                    self.mic = None;
                    let _ = self.mic_commands.send(MicCommand::Detach);
                    self.mic_thread.unpark();
                }
                Direction::Output => self.speaker = None,
            }
            return Ok(None);
        };
        let (info, _) = device::resolve(host, &choice, direction)?;
        // Each stream on a connection of its own: cpal 0.18's PulseAudio streams all carry
        // sync id 0, and the server refuses a second playback stream with the same id on
        // another sink ("Invalid argument") — which a switch or a fall back needs. A
        // connection each also gives each stream its own reactor thread.
        let own = device::host()?;
        let device = match info.id.is_synthetic() {
            true => None,
            false => Some(
                device::resolve(&own, &DeviceChoice::Id(info.id.clone()), direction)?
                    .1
                    .ok_or_else(|| DeviceError::NotFound(info.id.clone()))?,
            ),
        };
        self.generation += 1;
        let generation = self.generation;
        let me = self.me.clone();
        // Error callbacks run on a host thread: they only post a message here.
        let on_error = move |error: cpal::Error| {
            let _ = me.send(Control::Failed {
                direction,
                generation,
                error,
            });
        };
        match direction {
            Direction::Input => {
                let stream = capture::open(&info, device, own, self.mic_thread.clone(), on_error)?;
                let _ = self.mic_commands.send(MicCommand::Attach(stream));
                self.mic_thread.unpark();
                self.mic = Some(Active {
                    choice,
                    device: info.clone(),
                    generation,
                });
            }
            Direction::Output => {
                let first = self.speaker.is_none();
                let stream = playout::open(
                    &info,
                    device,
                    own,
                    self.playout.clone(),
                    self.counters.clone(),
                    first,
                    on_error,
                )?;
                // Make before break: once the new device asks for data, the old one lets
                // go of the mix and the new one takes it (a callback period apart).
                if let Some((_, old)) = self.speaker.take() {
                    let ready = Instant::now() + SWITCH_WAIT;
                    while !stream.started.load(Relaxed) && Instant::now() < ready {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    old.retired.store(true, Relaxed);
                    stream.active.store(true, Relaxed);
                    // Closed a little later: dropping a PulseAudio stream joins its
                    // threads, and done at once it held up the new stream's callbacks
                    // for ~135 ms (measured, an audible gap).
                    self.closing = Some((Instant::now() + CLOSE_AFTER, old));
                }
                self.speaker = Some((
                    Active {
                        choice,
                        device: info.clone(),
                        generation,
                    },
                    stream,
                ));
            }
        }
        self.emit(DeviceEvent::Switched {
            direction,
            device: info.clone(),
            reason,
        });
        Ok(Some(info))
    }

    fn active(&self, direction: Direction) -> Option<&Active> {
        match direction {
            Direction::Input => self.mic.as_ref(),
            Direction::Output => self.speaker.as_ref().map(|(a, _)| a),
        }
    }

    /// A stream failed (its device unplugged, the sound server gone): fall back to the
    /// system default, or report the loss.
    fn failed(
        &mut self,
        host: &cpal::Host,
        direction: Direction,
        generation: u64,
        error: &cpal::Error,
    ) {
        let Some(active) = self.active(direction) else {
            return;
        };
        if active.generation != generation {
            return; // a stream already replaced
        }
        let lost = active.device.id.clone();
        tracing::warn!(%lost, %error, "audio device failed");
        self.fall_back(host, direction, lost, error.to_string());
    }

    fn fall_back(
        &mut self,
        host: &cpal::Host,
        direction: Direction,
        lost: AudioDeviceId,
        why: String,
    ) {
        let reason = SwitchReason::FellBack { lost: lost.clone() };
        if let Err(e) = self.switch(host, direction, Some(DeviceChoice::Default), reason) {
            let _ = self.switch(host, direction, None, SwitchReason::Chosen);
            self.emit(DeviceEvent::Lost {
                direction,
                device: lost,
                error: format!("{why}; no default device: {e}"),
            });
        }
    }

    /// Once a second: report list changes, fall back from vanished devices, follow the
    /// system default where the choice is "default".
    fn poll(&mut self, host: &cpal::Host, watch: &mut DeviceWatch) {
        let Ok(now) = device::list(host) else {
            return;
        };
        let change = watch.update(now);
        if change.is_empty() {
            return;
        }
        self.emit(DeviceEvent::DevicesChanged {
            added: change.added.clone(),
            removed: change.removed.clone(),
            devices: watch.current().to_vec(),
        });
        for direction in [Direction::Input, Direction::Output] {
            let Some(active) = self.active(direction) else {
                continue;
            };
            let (id, choice) = (active.device.id.clone(), active.choice.clone());
            if !id.is_synthetic() && !watch.contains(direction, &id) {
                self.fall_back(host, direction, id, "the device was removed".into());
                continue;
            }
            let new_default = change.new_defaults.iter().find(|(d, _)| *d == direction);
            if let (DeviceChoice::Default, Some((_, Some(default)))) = (&choice, new_default)
                && *default != id
            {
                let reason = SwitchReason::DefaultChanged;
                if let Err(e) = self.switch(host, direction, Some(DeviceChoice::Default), reason) {
                    tracing::warn!(error = %e, "could not follow the new default device");
                }
            }
        }
    }

    fn emit(&mut self, event: DeviceEvent) {
        if self.missed > 0 {
            match self
                .events
                .try_send(DeviceEvent::Missed { count: self.missed })
            {
                Ok(()) => self.missed = 0,
                Err(_) => {
                    self.missed += 1;
                    return;
                }
            }
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(event) {
            self.missed += 1;
        }
    }
}
