//! Helpers for tests on the real audio path: the user-mode PulseAudio that scripts/pulse.sh
//! starts (PULSE_SERVER), driven with pactl, recorded with parec and fed with pacat.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tests on the one PulseAudio take turns: they load and unload its devices.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// How often the server has logged that a loopback underran (each time its delay grew):
/// scripts/pulse.sh keeps the log beside the socket's directory.
pub fn loopback_underruns() -> usize {
    let server = std::env::var("PULSE_SERVER").unwrap_or_default();
    let Some(run) = std::path::Path::new(server.trim_start_matches("unix:"))
        .ancestors()
        .nth(3)
    else {
        return 0;
    };
    std::fs::read_to_string(run.join("pulse.log"))
        .map(|log| log.matches("Too many underruns").count())
        .unwrap_or(0)
}

pub fn pactl(args: &[&str]) -> String {
    let out = Command::new("pactl")
        .args(args)
        .output()
        .expect("pactl runs");
    assert!(
        out.status.success(),
        "pactl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A module loaded for one test and unloaded when dropped.
pub struct Module(pub String);

impl Module {
    pub fn load(args: &[&str]) -> Self {
        let mut all = vec!["load-module"];
        all.extend_from_slice(args);
        Module(pactl(&all))
    }

    pub fn unload(self) {
        drop(self);
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        let _ = Command::new("pactl")
            .args(["unload-module", &self.0])
            .output();
    }
}

/// A virtual device pair for plug/unplug tests: a sink `name` and a microphone
/// `name_mic` hearing that sink.
pub struct Headset {
    pub sink: Module,
    pub mic: Module,
}

pub fn headset(name: &str, rate: u32) -> Headset {
    let sink = Module::load(&[
        "module-null-sink",
        &format!("sink_name={name}"),
        &format!("rate={rate}"),
        &format!("sink_properties=device.description={name}"),
    ]);
    let mic = Module::load(&[
        "module-remap-source",
        &format!("master={name}.monitor"),
        &format!("source_name={name}_mic"),
        &format!("rate={rate}"),
        &format!("source_properties=device.description={name}_mic"),
    ]);
    Headset { sink, mic }
}

/// Records `source` (mono s16 at `rate`) until dropped or `take`n.
pub struct Recorder {
    child: Child,
    samples: Arc<Mutex<Vec<(Instant, i16)>>>,
    pub rate: u32,
}

impl Recorder {
    pub fn start(source: &str, rate: u32) -> Self {
        let mut child = Command::new("parec")
            .args([
                "-d",
                source,
                "--raw",
                "--format=s16le",
                "--channels=1",
                &format!("--rate={rate}"),
                "--latency-msec=10",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("parec runs");
        let mut out = child.stdout.take().unwrap();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let into = samples.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 960];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let at = Instant::now();
                let mut all = into.lock().unwrap();
                all.extend(
                    buf[..n - n % 2]
                        .chunks_exact(2)
                        .map(|b| (at, i16::from_le_bytes([b[0], b[1]]))),
                );
            }
        });
        Self {
            child,
            samples,
            rate,
        }
    }

    /// Everything so far, with when each chunk was read.
    pub fn snapshot(&self) -> Vec<(Instant, i16)> {
        self.samples.lock().unwrap().clone()
    }

    pub fn samples(&self) -> Vec<f32> {
        self.snapshot()
            .iter()
            .map(|(_, s)| f32::from(*s) / 32_768.0)
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plays `samples` (mono f32 at `rate`) into `sink` with pacat, in the background.
pub fn play(sink: &str, samples: &[f32], rate: u32) -> Child {
    let mut child = Command::new("pacat")
        .args([
            "-d",
            sink,
            "--raw",
            "--format=s16le",
            "--channels=1",
            &format!("--rate={rate}"),
            "--latency-msec=20",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("pacat runs");
    let bytes: Vec<u8> = samples
        .iter()
        .flat_map(|s| ((s * 32_767.0) as i16).to_le_bytes())
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    child
}

pub fn tone(freq: f32, amplitude: f32, seconds: f32, rate: u32) -> Vec<f32> {
    let n = (seconds * rate as f32) as usize;
    (0..n)
        .map(|i| amplitude * (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin())
        .collect()
}

/// The amplitude of `freq` in `samples` (Goertzel, normalised: a full-scale sine reads 1).
pub fn amplitude_at(samples: &[f32], freq: f32, rate: u32) -> f32 {
    let w = std::f32::consts::TAU * freq / rate as f32;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0f32, 0f32);
    for &x in samples {
        let s = x + c * s1 - s2;
        (s2, s1) = (s1, s);
    }
    let power = s1 * s1 + s2 * s2 - c * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len().max(1) as f32
}

/// Root mean square, in dBFS.
pub fn rms_db(samples: &[f32]) -> f32 {
    let e: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (10.0 * (e / samples.len().max(1) as f64 + 1e-12).log10()) as f32
}

/// The strongest frequency between `from` and `to` Hz, in 1 Hz steps.
pub fn dominant(samples: &[f32], rate: u32, from: u32, to: u32) -> f32 {
    (from..=to)
        .map(|f| (f as f32, amplitude_at(samples, f as f32, rate)))
        .fold((0.0, 0.0), |best, x| if x.1 > best.1 { x } else { best })
        .0
}

/// Waits up to `timeout` for `check` to hold, polling every 50 ms.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// espeak-ng's voice saying `text`, at 48 kHz.
pub fn speech(name: &str, voice: &str, text: &str) -> Arc<[f32]> {
    let raw = speech_file(name, voice, text);
    std::fs::read(&raw)
        .unwrap()
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0)
        .collect()
}

/// The same as a raw 48 kHz mono s16le file (what the Python peer publishes); its path.
pub fn speech_file(name: &str, voice: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("estrade-speech-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (wav, raw) = (
        dir.join(format!("{name}.wav")),
        dir.join(format!("{name}.raw")),
    );
    let ok = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng runs")
        .success();
    assert!(ok);
    let ok = std::process::Command::new("sox")
        .arg(&wav)
        .args([
            "-r", "48000", "-c", "1", "-b", "16", "-e", "signed", "-t", "raw",
        ])
        .arg(&raw)
        .args(["norm", "-3"])
        .status()
        .expect("sox runs")
        .success();
    assert!(ok);
    raw
}

/// `seconds` of tone bursts (100 ms of `freq` every 500 ms), as a talker to play into a
/// device.
pub fn bursts(freq: f32, amplitude: f32, seconds: f32, rate: u32) -> Vec<f32> {
    let period = rate as usize / 2;
    tone(freq, amplitude, seconds, rate)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            if i % period < rate as usize / 10 {
                s
            } else {
                0.0
            }
        })
        .collect()
}
