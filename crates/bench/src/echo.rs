//! Echo cancellation on the real audio path of this machine, ours against libwebrtc's.
//!
//! One call is recorded live through `estrade-devices` on the user-mode PulseAudio
//! (scripts/pulse.sh): far-end speech is mixed and played on the virtual speaker; the
//! virtual microphone hears it back through a 50 ms, −10 dB loopback (the room), and a
//! near-end talker played into the room. The processing thread runs a chain that records
//! exactly what it is handed — every far-end frame, every microphone frame, in their live
//! interleaving, with the delay hint — and processes nothing. That tape is then run through
//! each canceller offline (ours through `sonora`, libwebrtc's through the Python SDK's
//! `AudioProcessingModule`, tests/interop/apm.py), so they all see the same input.
//!
//! Timeline: A far end alone (convergence, echo return loss enhancement), B the talker
//! alone, C both at once (double talk: how much of the talker is lost), D the far end again
//! after the room's echo path got 20 ms longer (the loopback reloaded at 70 ms). Drift:
//! A's tape looped for a minute with the microphone resampled ±300 ppm (a capture device
//! whose clock runs off: on this machine every device shares one clock, so it is made).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use estrade_devices::{AudioDeviceId, AudioDevices, DeviceChoice};

use crate::pulse::{pacat, pactl};
use estrade_media::{
    AudioProcessor, MonoResampler, PROCESSING_FRAME, ProcessingConfig, ProcessingFrame,
    ProcessingStats, SonoraProcessor,
};

const RATE: usize = 48_000;
/// Frames (10 ms) per second.
const FPS: usize = 100;

/// What the processing thread was handed, in order.
#[derive(Default, Clone)]
pub struct Tape {
    render: Vec<f32>,
    capture: Vec<f32>,
    /// Per capture frame: render frames handed over before it, and the delay hint then.
    schedule: Vec<(u32, u32)>,
    delay_ms: u32,
}

impl Tape {
    fn frames(&self) -> usize {
        self.schedule.len()
    }
}

/// A processing chain that records its input and passes it through untouched.
struct Taping {
    tape: Arc<Mutex<Tape>>,
}

impl AudioProcessor for Taping {
    fn analyze_render(&mut self, frame: &ProcessingFrame) {
        let mut tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
        tape.render.extend_from_slice(frame);
    }

    fn process_capture(&mut self, frame: &mut ProcessingFrame) {
        let mut tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
        let rendered = (tape.render.len() / PROCESSING_FRAME) as u32;
        let delay = tape.delay_ms;
        tape.schedule.push((rendered, delay));
        tape.capture.extend_from_slice(frame);
    }

    fn set_stream_delay_ms(&mut self, delay_ms: u32) {
        self.tape.lock().unwrap_or_else(|e| e.into_inner()).delay_ms = delay_ms;
    }

    fn configure(&mut self, _: ProcessingConfig) {}

    fn config(&self) -> ProcessingConfig {
        ProcessingConfig::NONE
    }

    fn stats(&self) -> ProcessingStats {
        ProcessingStats::default()
    }
}

/// Capture-frame indices where each segment starts, and the talker's offset in C.
#[derive(Debug, Clone, Copy)]
struct Marks {
    a: usize,
    b: usize,
    c: usize,
    c_talker: usize,
    d: usize,
    end: usize,
}

fn speech(
    dir: &Path,
    name: &str,
    voice: &str,
    text: &str,
) -> anyhow::Result<(PathBuf, Arc<[f32]>)> {
    let wav = dir.join(format!("{name}.wav"));
    let raw = dir.join(format!("{name}.raw"));
    let ok = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .context("espeak-ng (scripts/setup.sh installs it)")?
        .success();
    let ok = ok
        && Command::new("sox")
            .arg(&wav)
            .args([
                "-r", "48000", "-c", "1", "-b", "16", "-e", "signed", "-t", "raw",
            ])
            .arg(&raw)
            .args(["norm", "-3"])
            .status()
            .context("sox")?
            .success();
    if !ok {
        bail!("could not make the {name} speech");
    }
    let samples = std::fs::read(&raw)?
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0)
        .collect();
    Ok((raw, samples))
}

/// The room's echo path (scripts/pulse.sh's first loopback) replaced by one `ms` long.
fn set_echo_delay(ms: u32) -> anyhow::Result<()> {
    let modules = pactl(&["list", "short", "modules"])?;
    let echo = modules
        .lines()
        .find(|l| l.contains("module-loopback") && l.contains("source=estrade_speaker.monitor"))
        .and_then(|l| l.split_whitespace().next())
        .context("the echo loopback of scripts/pulse.sh")?;
    pactl(&["unload-module", echo])?;
    pactl(&[
        "load-module",
        "module-loopback",
        "source=estrade_speaker.monitor",
        "sink=estrade_micmix",
        &format!("latency_msec={ms}"),
        // Fixed, as scripts/pulse.sh loads it.
        "adjust_time=0",
        "source_dont_move=true",
        "sink_dont_move=true",
        "sink_input_properties=media.name=echo",
    ])?;
    let inputs = pactl(&["list", "short", "sink-inputs"])?;
    // The newest loopback input is the one just loaded: −10 dB, as the room.
    if let Some(id) = inputs
        .lines()
        .filter(|l| l.contains("module-loopback"))
        .filter_map(|l| l.split_whitespace().next())
        .max_by_key(|id| id.parse::<u32>().unwrap_or(0))
    {
        pactl(&["set-sink-input-volume", id, "-10dB"])?;
    }
    Ok(())
}

fn play_into_room(samples: &[f32]) -> anyhow::Result<std::process::Child> {
    use std::io::Write as _;
    let mut child = pacat("estrade_nearend")?;
    let bytes: Vec<u8> = samples
        .iter()
        .flat_map(|s| ((s * 32_767.0) as i16).to_le_bytes())
        .collect();
    let mut stdin = child.stdin.take().context("pacat's stdin")?;
    std::thread::spawn(move || stdin.write_all(&bytes));
    Ok(child)
}

/// Records the call (about 40 s).
async fn record(dir: &Path) -> anyhow::Result<(Tape, Marks)> {
    let (_, far) = speech(
        dir,
        "far",
        "fr",
        "Bonjour à tous. Aujourd'hui nous parlons de la sécurité des réseaux. Posez vos \
         questions dans le chat, je vous répondrai à la fin de la séance.",
    )?;
    let (_, near) = speech(
        dir,
        "near",
        "en",
        "Excuse me, I have a question about the second slide, please.",
    )?;
    let tape = Arc::new(Mutex::new(Tape::default()));
    let (devices, _events) = AudioDevices::start_with(Box::new(Taping { tape: tape.clone() }))?;
    let id = |s: &str| Some(DeviceChoice::Id(AudioDeviceId(s.into())));
    devices
        .use_speaker(id("pulseaudio:estrade_speaker"))
        .await?;
    devices.use_microphone(id("pulseaudio:estrade_mic")).await?;
    // Nobody reads the frames (the tape is what counts); a source keeps them flowing.
    let mut source = devices.microphone_source();
    let drain = tokio::spawn(async move {
        let mut frame = [0i16; 960];
        while estrade_media::AudioSource::next_frame(&mut source, &mut frame)
            .await
            .is_ok()
        {}
    });
    let frames = || tape.lock().unwrap_or_else(|e| e.into_inner()).frames();
    let secs = |n: usize| Duration::from_secs_f64(n as f64 / RATE as f64);
    let pause = Duration::from_millis(700);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = frames();
    devices.play_sound(far.clone())?;
    tokio::time::sleep(secs(far.len()) + pause).await;
    let b = frames();
    let talker = play_into_room(&near)?;
    tokio::time::sleep(secs(near.len()) + pause).await;
    drop(talker);
    let c = frames();
    devices.play_sound(far.clone())?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c_talker = frames();
    let talker = play_into_room(&near)?;
    tokio::time::sleep(secs(far.len()) - Duration::from_secs(2) + pause).await;
    drop(talker);
    set_echo_delay(70)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = frames();
    devices.play_sound(far.clone())?;
    tokio::time::sleep(secs(far.len()) + pause).await;
    let end = frames();
    set_echo_delay(50)?;
    drop(devices);
    drain.abort();
    let tape = tape.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((
        tape,
        Marks {
            a,
            b,
            c,
            c_talker,
            d,
            end,
        },
    ))
}

/// Runs `processor` over the tape as live: before each microphone frame, the far-end
/// frames that had been handed over by then.
fn replay(tape: &Tape, processor: &mut dyn AudioProcessor) -> Vec<f32> {
    let mut out = Vec::with_capacity(tape.capture.len());
    let mut fed = 0usize;
    let mut frame = [0f32; PROCESSING_FRAME];
    let render_frames = tape.render.len() / PROCESSING_FRAME;
    for (k, &(rendered, delay)) in tape.schedule.iter().enumerate() {
        while fed < (rendered as usize).min(render_frames) {
            frame.copy_from_slice(
                &tape.render[fed * PROCESSING_FRAME..(fed + 1) * PROCESSING_FRAME],
            );
            processor.analyze_render(&frame);
            fed += 1;
        }
        if k % FPS == 0 {
            processor.set_stream_delay_ms(delay);
        }
        frame.copy_from_slice(&tape.capture[k * PROCESSING_FRAME..(k + 1) * PROCESSING_FRAME]);
        processor.process_capture(&mut frame);
        out.extend_from_slice(&frame);
    }
    out
}

/// libwebrtc's module over the same tape (tests/interop/apm.py).
fn replay_libwebrtc(dir: &Path, tape: &Tape, stages: &[&str]) -> anyhow::Result<Vec<f32>> {
    let f32s = |v: &[f32]| v.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>();
    let (render, capture, schedule, out) = (
        dir.join("render.f32"),
        dir.join("capture.f32"),
        dir.join("schedule.u32"),
        dir.join(format!("libwebrtc{}.f32", stages.join(""))),
    );
    std::fs::write(&render, f32s(&tape.render))?;
    std::fs::write(&capture, f32s(&tape.capture))?;
    let sched: Vec<u8> = tape
        .schedule
        .iter()
        .flat_map(|(r, d)| [r.to_le_bytes(), d.to_le_bytes()].concat())
        .collect();
    std::fs::write(&schedule, sched)?;
    let status = Command::new(crate::reference::python()?)
        .arg(crate::reference::script("apm.py")?)
        .arg("--render")
        .arg(&render)
        .arg("--capture")
        .arg(&capture)
        .arg("--schedule")
        .arg(&schedule)
        .arg("--out")
        .arg(&out)
        .args(stages)
        .status()
        .context("the Python SDK's APM")?;
    if !status.success() {
        bail!("tests/interop/apm.py failed");
    }
    Ok(std::fs::read(&out)?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn db(samples: &[f32]) -> f64 {
    let e: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    10.0 * (e / samples.len().max(1) as f64 + 1e-12).log10()
}

/// Per 100 ms in capture frames `from..to`: echo removed (mic − output, dB), where the
/// microphone hears the far end (above −50 dBFS).
fn erle_chunks(mic: &[f32], out: &[f32], from: usize, to: usize) -> Vec<(usize, f64)> {
    (from..to)
        .step_by(10)
        .filter(|k| k + 10 <= to)
        .filter_map(|k| {
            let span = k * PROCESSING_FRAME..(k + 10) * PROCESSING_FRAME;
            let heard = db(&mic[span.clone()]);
            (heard > -50.0).then(|| (k, heard - db(&out[span])))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Seconds from `from` until the echo removed stays at 20 dB or more (the median of each
/// further half second, for two seconds).
fn convergence(chunks: &[(usize, f64)], from: usize) -> f64 {
    for (i, &(k, _)) in chunks.iter().enumerate() {
        let ahead: Vec<&(usize, f64)> = chunks[i..]
            .iter()
            .take_while(|(j, _)| *j < k + 2 * FPS)
            .collect();
        let windows_ok = ahead
            .chunks(5)
            .all(|w| median(w.iter().map(|(_, e)| *e).collect()) >= 20.0);
        if ahead.len() >= 10 && windows_ok {
            return (k.saturating_sub(from)) as f64 / FPS as f64;
        }
    }
    f64::NAN
}

/// One row of the echo table.
pub struct EchoRow {
    pub name: String,
    /// Median echo removed once converged (A, from 3 s), dB.
    pub erle_db: f64,
    pub convergence_s: f64,
    /// How much quieter the talker is in double talk than alone, dB (≥ 0).
    pub double_talk_loss_db: f64,
    /// After the 20 ms jump: time to 20 dB again, and the median from 3 s on.
    pub jump_convergence_s: f64,
    pub jump_erle_db: f64,
    /// A's tape looped a minute, the microphone ±300 ppm off: median over the last 15 s.
    pub drift_fast_db: f64,
    pub drift_slow_db: f64,
}

fn measure(name: &str, mic: &[f32], out: &[f32], m: Marks) -> EchoRow {
    let a = erle_chunks(mic, out, m.a, m.b);
    let settled: Vec<f64> = a
        .iter()
        .filter(|(k, _)| *k >= m.a + 3 * FPS)
        .map(|(_, e)| *e)
        .collect();
    let d = erle_chunks(mic, out, m.d, m.end);
    let d_settled: Vec<f64> = d
        .iter()
        .filter(|(k, _)| *k >= m.d + 3 * FPS)
        .map(|(_, e)| *e)
        .collect();
    // The talker alone (B) and over the far end (C), the same words: compare the output.
    let near_len = (m.c - m.b).min(m.d - m.c_talker);
    let span = |from: usize| from * PROCESSING_FRAME..(from + near_len) * PROCESSING_FRAME;
    let alone = db(&out[span(m.b)]);
    let together = db(&out[span(m.c_talker)]);
    EchoRow {
        name: name.to_owned(),
        erle_db: median(settled),
        convergence_s: convergence(&a, m.a),
        double_talk_loss_db: (alone - together).max(0.0),
        jump_convergence_s: convergence(&d, m.d),
        jump_erle_db: median(d_settled),
        drift_fast_db: f64::NAN,
        drift_slow_db: f64::NAN,
    }
}

/// A's tape looped for 60 s with the microphone resampled by `ppm`.
fn drifted(tape: &Tape, m: Marks, ppm: f64) -> Tape {
    let frames = m.b - m.a;
    let loops = 60 * FPS / frames.max(1) + 1;
    let (mut render, mut capture_in, mut schedule) = (Vec::new(), Vec::new(), Vec::new());
    let first_render = tape.schedule[m.a].0 as usize;
    let last_render = tape.schedule[m.b].0 as usize;
    for l in 0..loops {
        let offset = (l * (last_render - first_render)) as u32;
        render.extend_from_slice(
            &tape.render[first_render * PROCESSING_FRAME..last_render * PROCESSING_FRAME],
        );
        capture_in.extend_from_slice(&tape.capture[m.a * PROCESSING_FRAME..m.b * PROCESSING_FRAME]);
        schedule.extend(
            tape.schedule[m.a..m.b]
                .iter()
                .map(|(r, d)| (r - first_render as u32 + offset, *d)),
        );
    }
    // The microphone's clock `ppm` fast: more samples for the same sound.
    let mut resampler = MonoResampler::new(48_000, 48_000, PROCESSING_FRAME, true).expect("48 kHz");
    resampler.set_drift(ppm);
    let mut capture = Vec::with_capacity(capture_in.len());
    let (mut at, mut chunk) = (0, [0f32; PROCESSING_FRAME]);
    while at + resampler.max_needed() <= capture_in.len()
        && capture.len() / PROCESSING_FRAME < schedule.len()
    {
        let need = resampler.needed();
        at += resampler.process(&capture_in[at..at + need], &mut chunk);
        capture.extend_from_slice(&chunk);
    }
    schedule.truncate(capture.len() / PROCESSING_FRAME);
    Tape {
        render,
        capture,
        schedule,
        delay_ms: 0,
    }
}

fn drift_erle(mic: &[f32], out: &[f32]) -> f64 {
    let frames = mic.len() / PROCESSING_FRAME;
    let chunks = erle_chunks(mic, out, frames.saturating_sub(15 * FPS), frames);
    median(chunks.into_iter().map(|(_, e)| e).collect())
}

/// Records the call and measures every canceller on it.
pub async fn run() -> anyhow::Result<Vec<EchoRow>> {
    let dir = std::env::temp_dir().join(format!("estrade-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (tape, marks) = record(&dir).await?;
    eprintln!(
        "echo: recorded {:.1} s ({} far-end frames); segments at {marks:?}",
        tape.frames() as f64 / FPS as f64,
        tape.render.len() / PROCESSING_FRAME
    );
    let aec_only = ProcessingConfig {
        echo_cancellation: true,
        ..ProcessingConfig::NONE
    };
    let fast = drifted(&tape, marks, 300.0);
    let slow = drifted(&tape, marks, -300.0);
    type Run<'a> = Box<dyn Fn(&Tape) -> anyhow::Result<Vec<f32>> + 'a>;
    let ours = |config: ProcessingConfig| -> Run<'_> {
        Box::new(move |t: &Tape| Ok(replay(t, &mut SonoraProcessor::new(config))))
    };
    let theirs = |stages: &'static [&'static str]| -> Run<'_> {
        let dir = dir.clone();
        Box::new(move |t: &Tape| replay_libwebrtc(&dir, t, stages))
    };
    let runs: Vec<(&str, Run)> = vec![
        ("no processing", ours(ProcessingConfig::NONE)),
        ("Estrade, echo canceller (sonora AEC3)", ours(aec_only)),
        (
            "Estrade, full chain (AEC3 + NS + AGC2 + HPF)",
            ours(ProcessingConfig::ALL),
        ),
        ("libwebrtc APM, echo canceller", theirs(&["--aec"])),
        (
            "libwebrtc APM, full chain",
            theirs(&["--aec", "--ns", "--agc", "--hpf"]),
        ),
    ];
    let mut rows = Vec::new();
    for (name, run) in runs {
        let out = run(&tape)?;
        let mut row = measure(name, &tape.capture, &out, marks);
        row.drift_fast_db = drift_erle(&fast.capture, &run(&fast)?);
        row.drift_slow_db = drift_erle(&slow.capture, &run(&slow)?);
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

pub fn print(rows: &[EchoRow]) {
    println!(
        "\n| echo, real PulseAudio path (50 ms, −10 dB) | ERLE dB | converged in s | double-talk loss dB | after +20 ms: converged s / ERLE dB | +300 ppm ERLE dB | −300 ppm ERLE dB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.1} | {:.1} |",
            r.name,
            r.erle_db,
            r.convergence_s,
            r.double_talk_loss_db,
            r.jump_convergence_s,
            r.jump_erle_db,
            r.drift_fast_db,
            r.drift_slow_db
        );
    }
}
