//! Cameras: listed and opened through a [`CameraBackend`] (nokhwa's V4L2, AVFoundation and
//! Media Foundation today; a platform-native one can replace it without touching the
//! rest), captured on a thread of their own, converted to I420 without allocating per
//! frame, and handed to the encoder ([`CameraSource`], the engine's `VideoSource`) and to
//! a preview ([`CameraPreview`]) latest-frame-wins.
//!
//! Turning the camera off (the engine disables the published track) closes the device, so
//! its light goes off; turning it on opens it again.

mod format;
mod native;
mod source;
mod synthetic;

pub use format::{CameraFormat, CameraRequest, choose_format};
pub use native::NativeCameras;
pub use source::{CameraPreview, CameraSource, CameraState};
pub use synthetic::SyntheticCamera;

use estrade_media::ConvertError;

/// A camera's id: `native:<index>` (the platform's order) or `synthetic:pattern`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CameraId(pub String);

impl CameraId {
    pub const SYNTHETIC: &'static str = "synthetic:pattern";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CameraId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    pub id: CameraId,
    pub name: String,
    /// Where it is, as the platform says (`/dev/video0`, a USB path).
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CameraError {
    #[error("the cameras could not be listed: {0}")]
    List(String),
    #[error("no such camera: {0}")]
    NotFound(CameraId),
    /// macOS: the user has not granted camera access (System Settings → Privacy &
    /// Security → Camera).
    #[error("access to the camera was denied")]
    PermissionDenied,
    #[error("{camera} could not be opened: {reason}")]
    Open { camera: CameraId, reason: String },
    #[error("{camera} offers no format we can use ({offered})")]
    NoFormat { camera: CameraId, offered: String },
    #[error("{camera} stopped delivering frames: {reason}")]
    Lost { camera: CameraId, reason: String },
    #[error("a camera frame could not be converted")]
    Convert(#[source] ConvertError),
    #[error("the camera thread could not start")]
    Thread(#[source] std::io::Error),
}

impl CameraError {
    /// A stable code for the UI to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            CameraError::List(_) => "camera_list_failed",
            CameraError::NotFound(_) => "camera_not_found",
            CameraError::PermissionDenied => "camera_permission_denied",
            CameraError::Open { .. } => "camera_open_failed",
            CameraError::NoFormat { .. } => "camera_unsupported_format",
            CameraError::Lost { .. } => "camera_lost",
            CameraError::Convert(_) => "camera_bad_frame",
            CameraError::Thread(_) => "camera_internal",
        }
    }
}

/// Where cameras come from. `open` runs on the capture thread and the device stays there
/// (nokhwa's cameras are not `Send`).
pub trait CameraBackend: Send + Sync + 'static {
    fn list(&self) -> Result<Vec<CameraInfo>, CameraError>;
    fn open(
        &self,
        id: &CameraId,
        request: CameraRequest,
    ) -> Result<Box<dyn CameraDevice>, CameraError>;
}

/// An open camera, on its capture thread.
pub trait CameraDevice {
    /// What it delivers.
    fn format(&self) -> CameraFormat;
    /// Waits for the next frame and lends its bytes to `frame`.
    fn next_frame(&mut self, frame: &mut dyn FnMut(&[u8])) -> Result<(), CameraError>;
}

/// Every camera of `backends`, in order (real ones first, then the synthetic one).
pub fn list_all(backends: &[&dyn CameraBackend]) -> Result<Vec<CameraInfo>, CameraError> {
    let mut out = Vec::new();
    for backend in backends {
        out.extend(backend.list()?);
    }
    Ok(out)
}
