//! The uplink: how fast our cameras may send, and which of their layers at all. The
//! server's receiver reports feed the estimate ([`UplinkRate`]); its dynacast messages
//! say which layers someone receives. Each camera's pump reads the outcome from a `watch`
//! on its next frame ([`VideoPolicy`]): nothing here waits on a pump.

use std::time::Instant;

use estrade_media::{RateChange, UplinkReport};
use estrade_session::{TrackSid, VideoQuality};

use super::Driver;
use crate::video::{self, VideoPolicy};

/// The estimate's floor: the lowest layer of one camera, blurry but moving.
pub(crate) const MIN_VIDEO_KBPS: u32 = 60;

impl Driver {
    /// A receiver report about one of our video layers.
    pub(super) fn uplink_reported(&mut self, report: UplinkReport) {
        let change = self.uplink.handle_report(Instant::now(), report);
        if change != RateChange::Unchanged {
            self.share_uplink();
        }
    }

    /// The server says which layers of `track` someone receives.
    pub(super) fn layers_wanted(&mut self, track: &TrackSid, wanted: &[VideoQuality]) {
        let Some(p) = self
            .published
            .iter()
            .find(|p| p.sid.as_ref() == Some(track))
        else {
            return;
        };
        let Some(policy) = &p.policy else { return };
        let mut mask = [false; 3];
        for quality in wanted {
            mask[video::quality_index(*quality)] = true;
        }
        policy.send_if_modified(|p| std::mem::replace(&mut p.wanted, mask) != mask);
    }

    /// The cameras published changed: the estimate's ceiling is what they send at most.
    pub(super) fn uplink_ceiling_changed(&mut self) {
        let most: u32 = self
            .published
            .iter()
            .filter(|p| p.policy.is_some())
            .flat_map(|p| p.request.layers.iter().map(|l| l.bitrate_kbps))
            .sum();
        self.uplink.set_max_kbps(most.max(MIN_VIDEO_KBPS));
        self.share_uplink();
    }

    /// Splits the estimate evenly between the cameras (one today; a screen share later).
    pub(super) fn share_uplink(&mut self) {
        let target = self.uplink.target_kbps();
        self.uplink_kbps
            .store(target, std::sync::atomic::Ordering::Relaxed);
        let cameras = self.published.iter().filter(|p| p.policy.is_some()).count();
        let share = target / u32::try_from(cameras.max(1)).unwrap_or(1);
        for policy in self.published.iter().filter_map(|p| p.policy.as_ref()) {
            policy.send_if_modified(|p| std::mem::replace(&mut p.kbps, share) != share);
        }
    }

    /// A new camera's policy: all layers until the server says otherwise, at its share.
    pub(super) fn new_video_policy(&self) -> VideoPolicy {
        VideoPolicy::all(self.uplink.target_kbps())
    }
}
