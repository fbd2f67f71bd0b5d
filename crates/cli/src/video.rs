//! The CLI's camera options and what it does with remote cameras: decode them and count
//! frames and sizes per participant (no window). Enough for load tests and demos.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, bail};
use estrade_engine::{
    CameraSettings, I420Frame, ParticipantIdentity, TrackSid, VideoCodec, VideoOutput, VideoSink,
};

/// `1280x720` → (1280, 720).
pub fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = text
        .split_once('x')
        .context("a size is WIDTHxHEIGHT, e.g. 1280x720")?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    if !(16..=3840).contains(&w) || !(16..=2160).contains(&h) {
        bail!("{w}x{h}: sizes go from 16x16 to 3840x2160");
    }
    Ok((w, h))
}

pub fn camera_settings(
    size: (u32, u32),
    codec: &str,
    simulcast: bool,
) -> anyhow::Result<CameraSettings> {
    let codec = match codec {
        "vp8" => VideoCodec::Vp8,
        "h264" => VideoCodec::H264,
        other => bail!("--codec {other}: vp8 or h264"),
    };
    // ~0.1 bit per pixel at 30 fps, as conferencing apps send (1.7 Mb/s at 720p).
    let bitrate_kbps = (u64::from(size.0) * u64::from(size.1) * 30 / 16_000).clamp(100, 4_000);
    Ok(CameraSettings {
        width: size.0,
        height: size.1,
        fps: 30,
        bitrate_kbps: bitrate_kbps as u32,
        codec,
        simulcast,
    })
}

#[derive(Debug, Default)]
pub struct Watched {
    pub frames: u64,
    pub sizes: BTreeSet<(u32, u32)>,
}

/// Decoded remote cameras, counted.
#[derive(Clone, Default)]
pub struct FrameCounter {
    seen: Arc<Mutex<BTreeMap<String, Watched>>>,
}

impl FrameCounter {
    pub fn take(&self) -> BTreeMap<String, Watched> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl VideoOutput for FrameCounter {
    fn open(&self, participant: &ParticipantIdentity, _track: &TrackSid) -> Box<dyn VideoSink> {
        Box::new(Counting {
            from: participant.as_str().to_owned(),
            seen: self.clone(),
            frames: 0,
            size: (0, 0),
        })
    }
}

struct Counting {
    from: String,
    seen: FrameCounter,
    frames: u64,
    size: (u32, u32),
}

impl VideoSink for Counting {
    fn show(&mut self, frame: &I420Frame, _at: Instant) {
        // Locks only when the size changes and every 30 frames: cheap next to decoding.
        self.frames += 1;
        let size = (frame.width(), frame.height());
        if size != self.size || self.frames.is_multiple_of(30) {
            self.size = size;
            let mut seen = self.seen.seen.lock().unwrap_or_else(|e| e.into_inner());
            if !seen.contains_key(&self.from) {
                seen.insert(self.from.clone(), Watched::default());
            }
            if let Some(entry) = seen.get_mut(&self.from) {
                entry.sizes.insert(size);
                entry.frames = self.frames;
            }
        }
    }
}
