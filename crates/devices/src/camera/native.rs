//! The platform's cameras through nokhwa: V4L2 on Linux, AVFoundation on macOS, Media
//! Foundation on Windows. Raw frames only (we convert them ourselves); the camera stays on
//! the capture thread that opened it.

use nokhwa::utils::{ApiBackend, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};

use super::{
    CameraBackend, CameraDevice, CameraError, CameraFormat, CameraId, CameraInfo, CameraRequest,
    choose_format,
};
use estrade_media::PixelFormat;

const PREFIX: &str = "native:";

/// The platform's cameras.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeCameras;

fn pixel(format: FrameFormat) -> PixelFormat {
    match format {
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::YUYV => PixelFormat::Yuyv,
        FrameFormat::NV12 => PixelFormat::Nv12,
        FrameFormat::GRAY => PixelFormat::Gray,
        FrameFormat::RAWRGB => PixelFormat::Rgb24,
        FrameFormat::RAWBGR => PixelFormat::Bgr24,
    }
}

const ALL_FORMATS: [FrameFormat; 6] = [
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
];

/// macOS asks the user once; until then (or if refused) nothing opens.
#[cfg(target_os = "macos")]
fn check_permission() -> Result<(), CameraError> {
    if nokhwa::nokhwa_check() {
        return Ok(());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    nokhwa::nokhwa_initialize(move |granted| {
        let _ = tx.send(granted);
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(true) => Ok(()),
        _ => Err(CameraError::PermissionDenied),
    }
}

#[cfg(not(target_os = "macos"))]
fn check_permission() -> Result<(), CameraError> {
    Ok(())
}

fn index_of(id: &CameraId) -> Result<u32, CameraError> {
    id.0.strip_prefix(PREFIX)
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| CameraError::NotFound(id.clone()))
}

impl CameraBackend for NativeCameras {
    fn list(&self) -> Result<Vec<CameraInfo>, CameraError> {
        let cameras =
            nokhwa::query(ApiBackend::Auto).map_err(|e| CameraError::List(e.to_string()))?;
        Ok(cameras
            .into_iter()
            .filter_map(|c| match c.index() {
                CameraIndex::Index(i) => Some(CameraInfo {
                    id: CameraId(format!("{PREFIX}{i}")),
                    name: c.human_name(),
                    description: c.description().to_owned(),
                }),
                CameraIndex::String(_) => None,
            })
            .collect())
    }

    fn open(
        &self,
        id: &CameraId,
        request: CameraRequest,
    ) -> Result<Box<dyn CameraDevice>, CameraError> {
        check_permission()?;
        let index = index_of(id)?;
        let open_error = |e: nokhwa::NokhwaError| CameraError::Open {
            camera: id.clone(),
            reason: e.to_string(),
        };
        // Opened with any format first; then the one we choose from what it offers
        // (nokhwa's own "closest" choice fails when the exact size is not offered).
        let any = RequestedFormat::with_formats(RequestedFormatType::None, &ALL_FORMATS);
        let mut camera = nokhwa::Camera::new(CameraIndex::Index(index), any).map_err(open_error)?;
        let offered = camera.compatible_camera_formats().map_err(open_error)?;
        let ours: Vec<CameraFormat> = offered
            .iter()
            .map(|f| CameraFormat {
                width: f.width(),
                height: f.height(),
                fps: f.frame_rate(),
                pixel: pixel(f.format()),
            })
            .collect();
        let chosen = choose_format(&ours, request).ok_or_else(|| CameraError::NoFormat {
            camera: id.clone(),
            offered: format!("{ours:?}"),
        })?;
        let native = offered[ours.iter().position(|f| *f == chosen).unwrap_or(0)];
        let exact = RequestedFormat::with_formats(RequestedFormatType::Exact(native), &ALL_FORMATS);
        camera.set_camera_requset(exact).map_err(open_error)?;
        camera.open_stream().map_err(open_error)?;
        Ok(Box::new(NativeCamera {
            camera,
            id: id.clone(),
            format: chosen,
        }))
    }
}

struct NativeCamera {
    camera: nokhwa::Camera,
    id: CameraId,
    format: CameraFormat,
}

impl CameraDevice for NativeCamera {
    fn format(&self) -> CameraFormat {
        self.format
    }

    fn next_frame(&mut self, frame: &mut dyn FnMut(&[u8])) -> Result<(), CameraError> {
        // On Linux this borrows the driver's buffer: no copy.
        let bytes = self.camera.frame_raw().map_err(|e| CameraError::Lost {
            camera: self.id.clone(),
            reason: e.to_string(),
        })?;
        frame(&bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_platform_index() {
        assert_eq!(index_of(&CameraId("native:3".into())).unwrap(), 3);
        assert!(matches!(
            index_of(&CameraId("native:x".into())),
            Err(CameraError::NotFound(_))
        ));
        assert!(index_of(&CameraId("synthetic:pattern".into())).is_err());
    }
}
