//! The CLI's camera options and what it does with remote cameras: decode them and count
//! frames and sizes per participant (no window). Enough for load tests and demos.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::bail;
use estrade_engine::{
    CameraSettings, I420Frame, ParticipantIdentity, TrackSid, VideoCodec, VideoOutput, VideoSink,
};

/// Why a size is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SizeError {
    NotASize,
    OutOfRange { width: u32, height: u32 },
    Odd { width: u32, height: u32 },
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotASize => f.write_str("a size is WIDTHxHEIGHT, e.g. 1280x720"),
            Self::OutOfRange { width, height } => {
                write!(f, "{width}x{height}: sizes go from 16x16 to 3840x2160")
            }
            Self::Odd { width, height } => write!(
                f,
                "{width}x{height}: width and height must be even (a camera is sent as I420, \
                 whose colour planes are half the size)"
            ),
        }
    }
}

impl std::error::Error for SizeError {}

/// `1280x720` → (1280, 720). Any size in range: a `--tile` is only a hint to the server.
pub fn parse_size(text: &str) -> Result<(u32, u32), SizeError> {
    let (w, h) = text.split_once('x').ok_or(SizeError::NotASize)?;
    let (width, height) = match (w.parse(), h.parse()) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err(SizeError::NotASize),
    };
    if !(16..=3840).contains(&width) || !(16..=2160).contains(&height) {
        return Err(SizeError::OutOfRange { width, height });
    }
    Ok((width, height))
}

/// A size a camera can be published at: [`parse_size`], and even (refused here rather than
/// on every frame once the track is published).
pub fn parse_camera_size(text: &str) -> Result<(u32, u32), SizeError> {
    let size = parse_size(text)?;
    check_even(size)?;
    Ok(size)
}

fn check_even((width, height): (u32, u32)) -> Result<(), SizeError> {
    if width.is_multiple_of(2) && height.is_multiple_of(2) {
        Ok(())
    } else {
        Err(SizeError::Odd { width, height })
    }
}

/// How to publish a camera of `size`. Checks the size again: a device camera's comes from
/// the device, not from [`parse_camera_size`].
pub fn camera_settings(
    size: (u32, u32),
    codec: &str,
    simulcast: bool,
) -> anyhow::Result<CameraSettings> {
    check_even(size)?;
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

#[derive(Debug, Default, Clone)]
pub struct Watched {
    pub frames: u64,
    pub sizes: BTreeSet<(u32, u32)>,
    /// The size of the last frame counted.
    pub size: (u32, u32),
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

    pub fn snapshot(&self) -> BTreeMap<String, Watched> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
        // Locks only when the size changes and every 5 frames: cheap next to decoding.
        self.frames += 1;
        let size = (frame.width(), frame.height());
        if size != self.size || self.frames.is_multiple_of(5) {
            self.size = size;
            let mut seen = self.seen.seen.lock().unwrap_or_else(|e| e.into_inner());
            if !seen.contains_key(&self.from) {
                seen.insert(self.from.clone(), Watched::default());
            }
            if let Some(entry) = seen.get_mut(&self.from) {
                entry.sizes.insert(size);
                entry.size = size;
                entry.frames = self.frames;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_width_by_height_in_range() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert_eq!(parse_size("321x181"), Ok((321, 181)), "a tile may be odd");
        for text in ["720p", "x720", "1280x", "axb", "-2x4", "1280x720x3"] {
            assert_eq!(parse_size(text), Err(SizeError::NotASize), "{text}");
        }
        let too_big = parse_size("99999x10").unwrap_err();
        assert!(too_big.to_string().contains("3840x2160"), "{too_big}");
    }

    #[test]
    fn odd_camera_sizes_are_refused_when_parsed() {
        assert_eq!(parse_camera_size("640x360"), Ok((640, 360)));
        for (text, width, height) in [("641x360", 641, 360), ("640x361", 640, 361)] {
            let error = parse_camera_size(text).unwrap_err();
            assert_eq!(error, SizeError::Odd { width, height });
            assert!(
                error.to_string().contains("width and height must be even"),
                "{error}"
            );
        }
    }

    #[test]
    fn odd_device_camera_sizes_are_refused_before_publishing() {
        let error = camera_settings((1279, 720), "h264", false).unwrap_err();
        assert!(error.to_string().contains("must be even"), "{error}");
        let settings = camera_settings((1280, 720), "vp8", true).unwrap();
        assert_eq!((settings.width, settings.height), (1280, 720));
    }
}
