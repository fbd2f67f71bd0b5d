//! What each step of the device paths costs, per frame, on one core: per 10 ms of audio
//! the capture conversion, resampling, each processing stage and Opus (per 20 ms); per
//! 720p camera frame each pixel-format conversion and the MJPEG decode. Real signals
//! (speech-like noise, a camera-like picture), warmed up, p50 and p95 of many runs.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Context as _;
use estrade_media::pixel::{FrameConverter, PixelFormat};
use estrade_media::{
    AudioProcessor, FRAME_SAMPLES, I420Frame, MAX_PACKET, MonoResampler, OpusEncoder,
    PROCESSING_FRAME, ProcessingConfig, SonoraProcessor,
};

pub struct Cost {
    pub what: String,
    pub p50_us: f64,
    pub p95_us: f64,
}

fn time(what: &str, runs: usize, mut step: impl FnMut(usize)) -> Cost {
    for k in 0..runs / 10 {
        step(k); // warm-up
    }
    let mut us: Vec<f64> = (0..runs)
        .map(|k| {
            let t = Instant::now();
            step(k);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    us.sort_by(f64::total_cmp);
    Cost {
        what: what.to_owned(),
        p50_us: us[us.len() / 2],
        p95_us: us[us.len() * 95 / 100],
    }
}

/// Speech-like: noise bursts shaped like syllables, 48 kHz mono.
fn voice(seconds: usize) -> Vec<f32> {
    let mut seed = 1u32;
    let mut low = 0f32;
    (0..48_000 * seconds)
        .map(|i| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let white = (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
            low += 0.15 * (white - low);
            let syllable = ((i as f32 / 48_000.0) * 4.0 * std::f32::consts::TAU)
                .sin()
                .max(0.0);
            0.4 * low * syllable
        })
        .collect()
}

pub fn audio() -> Vec<Cost> {
    let runs = 2_000;
    let speech = voice(25);
    let frame = |k: usize| -> [f32; PROCESSING_FRAME] {
        let at = (k * PROCESSING_FRAME) % (speech.len() - PROCESSING_FRAME);
        std::array::from_fn(|i| speech[at + i])
    };
    let mut out = Vec::new();
    // A stereo i16 device buffer of 10 ms → mono f32, as the capture callback does.
    let stereo: Vec<i16> = (0..2 * 480).map(|i| (i as i16).wrapping_mul(97)).collect();
    let mut mono = [0f32; 480];
    out.push(time("capture: 10 ms stereo i16 → mono f32", runs, |_| {
        for (o, s) in mono
            .iter_mut()
            .zip(estrade_devices::mono(black_box(&stereo), 2))
        {
            *o = s;
        }
        black_box(&mono);
    }));
    let mut rs = MonoResampler::new(44_100, 48_000, PROCESSING_FRAME, false).expect("resampler");
    let input = vec![0.1f32; rs.max_needed()];
    let mut res = [0f32; PROCESSING_FRAME];
    out.push(time(
        "resample 44.1 → 48 kHz, 10 ms (sinc, 64 taps)",
        runs,
        |_| {
            let need = rs.needed();
            black_box(rs.process(&input[..need], &mut res));
        },
    ));
    let mut drift = MonoResampler::new(48_000, 48_000, FRAME_SAMPLES, true).expect("resampler");
    drift.set_drift(300.0);
    let input = vec![0.1f32; drift.max_needed()];
    let mut res = [0f32; FRAME_SAMPLES];
    out.push(time(
        "drift follower, 20 ms of one remote microphone",
        runs,
        |_| {
            let need = drift.needed();
            black_box(drift.process(&input[..need], &mut res));
        },
    ));
    let stage = |echo, ns, agc, hpf| ProcessingConfig {
        echo_cancellation: echo,
        noise_suppression: ns,
        gain_control: agc,
        high_pass: hpf,
    };
    for (name, config) in [
        (
            "processing: high-pass filter only",
            stage(false, false, false, true),
        ),
        (
            "processing: noise suppression (+ its high-pass)",
            stage(false, true, false, false),
        ),
        (
            "processing: gain control (AGC2) only",
            stage(false, false, true, false),
        ),
        (
            "processing: echo canceller (AEC3) only",
            stage(true, false, false, false),
        ),
        ("processing: all four", ProcessingConfig::ALL),
    ] {
        let mut apm = SonoraProcessor::new(config);
        out.push(time(&format!("{name}, 10 ms"), runs, |k| {
            let far = frame(k + 7);
            apm.analyze_render(&far);
            let mut mic = frame(k);
            apm.process_capture(&mut mic);
            black_box(&mic);
        }));
    }
    let mut encoder = OpusEncoder::new().expect("Opus");
    let mut packet = [0u8; MAX_PACKET];
    out.push(time(
        "Opus encode, 20 ms (32 kb/s, FEC, DTX)",
        runs / 2,
        |k| {
            let pcm: [i16; FRAME_SAMPLES] = std::array::from_fn(|i| {
                (speech[(k * FRAME_SAMPLES + i) % speech.len()] * 32_767.0) as i16
            });
            black_box(encoder.encode(&pcm, &mut packet).ok());
        },
    ));
    out
}

/// A camera-like 1280×720 picture (gradients and edges), in each format a camera sends.
pub fn video() -> anyhow::Result<Vec<Cost>> {
    let (w, h) = (1280usize, 720usize);
    let rgb: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            let edge = if (x / 80 + y / 80) % 2 == 0 { 40 } else { 0 };
            [
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                (((x + y) / 5) % 200 + edge) as u8,
            ]
        })
        .collect();
    let yuyv: Vec<u8> = rgb
        .chunks_exact(6)
        .flat_map(|p| [p[1], 128, p[4], 128])
        .collect();
    let nv12: Vec<u8> = rgb
        .chunks_exact(3)
        .map(|p| p[1])
        .chain(std::iter::repeat_n(128u8, w * h / 2))
        .collect();
    let jpeg = jpeg_of(&rgb, w, h)?;
    let mut converter = FrameConverter::new();
    let mut frame = I420Frame::new(w as u32, h as u32);
    let mut out = Vec::new();
    for (name, format, data) in [
        ("YUYV → I420, 720p", PixelFormat::Yuyv, &yuyv),
        ("NV12 → I420, 720p", PixelFormat::Nv12, &nv12),
        ("RGB24 → I420, 720p", PixelFormat::Rgb24, &rgb),
        ("MJPEG decode → I420, 720p", PixelFormat::Mjpeg, &jpeg),
    ] {
        converter
            .convert(format, w as u32, h as u32, data, &mut frame)
            .with_context(|| name.to_owned())?;
        out.push(time(name, 120, |_| {
            black_box(
                converter
                    .convert(format, w as u32, h as u32, data, &mut frame)
                    .ok(),
            );
        }));
    }
    Ok(out)
}

/// The picture as a webcam's MJPEG frame (4:2:2, quality 85), by ImageMagick.
fn jpeg_of(rgb: &[u8], w: usize, h: usize) -> anyhow::Result<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("estrade-costs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (ppm, jpg) = (dir.join("frame.ppm"), dir.join("frame.jpg"));
    let mut bytes = format!("P6\n{w} {h}\n255\n").into_bytes();
    bytes.extend_from_slice(rgb);
    std::fs::write(&ppm, bytes)?;
    let ok = std::process::Command::new("convert")
        .arg(&ppm)
        .args(["-sampling-factor", "2x1", "-quality", "85"])
        .arg(&jpg)
        .status()
        .context("ImageMagick's convert (scripts/setup.sh installs it)")?
        .success();
    anyhow::ensure!(ok, "convert failed");
    let jpeg = std::fs::read(&jpg)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(jpeg)
}

pub fn print(title: &str, costs: &[Cost]) {
    println!("\n| {title} | p50 µs | p95 µs |");
    println!("|---|---|---|");
    for c in costs {
        println!("| {} | {:.0} | {:.0} |", c.what, c.p50_us, c.p95_us);
    }
}
