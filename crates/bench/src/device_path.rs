//! Mouth-to-ear through real devices: a talker (wall-clock tone bursts, the synthetic
//! microphone's signal) plays into the virtual room, the sender captures it from the
//! virtual microphone (estrade-devices, processing on), the receiver plays it on a virtual
//! speaker whose monitor is recorded and read back with the wall clock. The talker's own
//! path (pacat, the room's loopback) is measured at the microphone in the same run and
//! taken off: what remains is microphone → speaker through two clients.
//!
//! The reference is the same with two Python SDK peers on libwebrtc's own audio device
//! module (`rtc.PlatformAudio`: its PulseAudio input and output, its processing on), on
//! the same virtual devices. (Feeding the SDK through parec/pacat pipes instead gave 15 to
//! 515 ms between runs: the pipes' queues, not libwebrtc.)

use std::io::{Read as _, Write as _};
use std::ops::ControlFlow;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use estrade_backend::api::JoinResponse as Grant;
use estrade_devices::{AudioDeviceId, AudioDevices, DeviceChoice, ProcessingConfig};
use estrade_engine::JoinOptions;
use estrade_engine::synthetic::{PulseAnalyser, ToneBursts, unix_us_now};
use estrade_media::FRAME_SAMPLES;
use estrade_media::clock::spawn_clock;

use crate::pulse::{pacat, pactl};

const LISTENER: &str = "estrade_listener";
/// Its name as device lists show it (libwebrtc's module picks devices by it).
const LISTENER_NAME: &str = "Estrade_listener";

/// Whose clients are measured.
#[derive(Debug, Clone, Copy)]
pub enum Clients {
    Estrade,
    /// The Python SDK on libwebrtc's audio device module.
    Libwebrtc,
}

/// The talker: wall-clock bursts of `freq` written to the room's near-end sink as they
/// happen (20 ms at a time). Stops when dropped.
struct Talker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    pacat: Child,
}

impl Talker {
    fn start(freq: f64) -> anyhow::Result<Self> {
        let mut pacat = pacat("estrade_nearend")?;
        let mut stdin = pacat.stdin.take().context("pacat's stdin")?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let tone = ToneBursts::new(freq);
        let (anchor, anchor_us) = (Instant::now(), unix_us_now());
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut bytes = [0u8; 2 * FRAME_SAMPLES];
        spawn_clock("bench-talker", Duration::from_millis(20), move |deadline| {
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                return ControlFlow::Break(());
            }
            let end_us = anchor_us + deadline.saturating_duration_since(anchor).as_micros() as u64;
            tone.fill(end_us, &mut frame);
            for (b, s) in bytes.chunks_exact_mut(2).zip(&frame) {
                b.copy_from_slice(&s.to_le_bytes());
            }
            match stdin.write_all(&bytes) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        })?;
        Ok(Self { stop, pacat })
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.pacat.kill();
        let _ = self.pacat.wait();
    }
}

/// The listener's speaker monitor, recorded with the wall clock of each read.
struct Listening {
    parec: Child,
    samples: Arc<Mutex<Vec<(u64, i16)>>>,
}

impl Listening {
    /// Records `source` (a monitor or the room's microphone).
    fn start(source: &str) -> anyhow::Result<Self> {
        let mut parec = Command::new("parec")
            .args(["-d", source, "--raw", "--format=s16le"])
            .args(["--channels=1", "--rate=48000", "--latency-msec=10"])
            .stdout(Stdio::piped())
            .spawn()
            .context("parec")?;
        let mut out = parec.stdout.take().context("parec's stdout")?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let into = samples.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 960];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // Handed over now: its last sample was played about now.
                let end_us = unix_us_now();
                let count = n / 2;
                let mut all = into.lock().unwrap_or_else(|e| e.into_inner());
                for (i, b) in buf[..count * 2].chunks_exact(2).enumerate() {
                    let at = end_us.saturating_sub(((count - i) as u64) * 1_000_000 / 48_000);
                    all.push((at, i16::from_le_bytes([b[0], b[1]])));
                }
            }
        });
        Ok(Self { parec, samples })
    }

    fn bursts(&self, skip: usize) -> Vec<f64> {
        self.analyse().latencies_ms.into_iter().skip(skip).collect()
    }

    fn analyse(&self) -> PulseAnalyser {
        let samples = self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut analyser = PulseAnalyser::default();
        for chunk in samples.chunks(480) {
            let pcm: Vec<i16> = chunk.iter().map(|(_, s)| *s).collect();
            analyser.feed(&pcm, chunk[0].0);
        }
        analyser
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.parec.kill();
        let _ = self.parec.wait();
    }
}

/// Microphone-to-speaker (ms) through two clients on the devices.
pub async fn mouth_to_ear(
    clients: Clients,
    a: &Grant,
    b: &Grant,
    seconds: u64,
    skip: usize,
) -> anyhow::Result<Vec<f64>> {
    // A speaker not heard by the room's microphone (no feedback), recorded at its monitor.
    let module = pactl(&[
        "load-module",
        "module-null-sink",
        &format!("sink_name={LISTENER}"),
        "rate=48000",
        &format!("sink_properties=device.description={LISTENER_NAME}"),
    ])?;
    let result = match clients {
        Clients::Estrade => ours(a, b, seconds, skip).await,
        Clients::Libwebrtc => libwebrtc(a, b, seconds, skip).await,
    };
    pactl(&["unload-module", &module])?;
    result
}

async fn ours(a: &Grant, b: &Grant, seconds: u64, skip: usize) -> anyhow::Result<Vec<f64>> {
    let id = |s: &str| Some(DeviceChoice::Id(AudioDeviceId(s.into())));
    let (sender_devices, _e1) = AudioDevices::start(ProcessingConfig::ALL)?;
    sender_devices
        .use_microphone(id("pulseaudio:estrade_mic"))
        .await?;
    let (listener_devices, _e2) = AudioDevices::start(ProcessingConfig::NONE)?;
    listener_devices
        .use_speaker(id(&format!("pulseaudio:{LISTENER}")))
        .await?;
    let join = |grant: &Grant, devices: &AudioDevices, speaker: bool| {
        estrade_engine::join(JoinOptions {
            url: grant.url.clone(),
            token: grant.token.clone(),
            audio_output: speaker.then(|| devices.output()),
            video_output: None,
        })
    };
    let (sender, sender_events) = join(a, &sender_devices, false).await?;
    let (listener, listener_events) = join(b, &listener_devices, true).await?;
    tokio::spawn(crate::load::drain(sender_events));
    tokio::spawn(crate::load::drain(listener_events));
    let recording = Listening::start(&format!("{LISTENER}.monitor"))?;
    let room_mic = Listening::start("estrade_mic")?;
    let talker = Talker::start(880.0)?;
    sender
        .publish_microphone(sender_devices.microphone_source())
        .await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    drop(talker);
    sender.leave().await;
    listener.leave().await;
    Ok(from_the_microphone(&recording, &room_mic, skip))
}

async fn libwebrtc(a: &Grant, b: &Grant, seconds: u64, skip: usize) -> anyhow::Result<Vec<f64>> {
    // libwebrtc's device module (SDK 1.2.1) played on the system default speaker whatever
    // `set_playout_device` chose (measured: the listener's sink stayed silent): the
    // listener's sink is the default for this row.
    pactl(&["set-default-sink", LISTENER])?;
    let result = libwebrtc_on_default(a, b, seconds, skip).await;
    pactl(&["set-default-sink", "estrade_speaker"])?;
    result
}

async fn libwebrtc_on_default(
    a: &Grant,
    b: &Grant,
    seconds: u64,
    skip: usize,
) -> anyhow::Result<Vec<f64>> {
    // Each peer stays `seconds` after its start (it also waits to see the other).
    let secs = (seconds + 2).to_string();
    let listener = crate::reference::command(b)?
        .args([
            "--speaker",
            LISTENER_NAME,
            "--listen-only",
            "--seconds",
            &secs,
        ])
        .spawn()
        .context("the Python peer")?;
    let sender = crate::reference::command(a)?
        .args(["--mic", "Estrade_microphone", "--seconds", &secs])
        .spawn()
        .context("the Python peer")?;
    let recording = Listening::start(&format!("{LISTENER}.monitor"))?;
    let room_mic = Listening::start("estrade_mic")?;
    let talker = Talker::start(880.0)?;
    tokio::time::sleep(Duration::from_secs(seconds + 1)).await;
    drop(talker);
    let (_, heard) = tokio::try_join!(
        crate::reference::report(sender),
        crate::reference::report(listener)
    )?;
    // What the listener's SDK decoded (besides what its device module played).
    let bursts = heard["heard"][a.identity.0.as_str()]["latencies_ms"]
        .as_array()
        .map_or(0, Vec::len);
    eprintln!("  libwebrtc's listener decoded {bursts} bursts from the sender");
    Ok(from_the_microphone(&recording, &room_mic, skip))
}

/// The listener's latencies counted from when the room's microphone heard each burst (the
/// talker's own path, pacat and the room's loopback, varies from run to run and is not the
/// client's): minus the median latency at the microphone.
fn from_the_microphone(listener: &Listening, mic: &Listening, skip: usize) -> Vec<f64> {
    let mut at_mic = mic.bursts(skip);
    at_mic.sort_by(f64::total_cmp);
    let talker = at_mic.get(at_mic.len() / 2).copied().unwrap_or(f64::NAN);
    eprintln!("  the talker reached the microphone after {talker:.1} ms (p50)");
    let heard: Vec<f64> = listener
        .bursts(skip)
        .into_iter()
        .map(|l| l - talker)
        .collect();
    eprintln!(
        "  from the microphone to the listener's speaker (ms): {:?}",
        heard.iter().map(|l| l.round()).collect::<Vec<_>>()
    );
    heard
}
