//! The downlink, the room task's side: the sound guard's decisions carried out on the
//! session (`sound_guard.rs` decides; nothing here waits on a track task).

use std::time::Instant;

use estrade_session::RemoteVideoLimit;

use super::Driver;
use crate::events::RoomEvent;
use crate::sound_guard::GuardChange;

impl Driver {
    /// Every guard tick: pauses the remote video while our downlink loses most packets,
    /// tries its lowest layer after a hold, gives it back when that holds
    /// (`sound_guard.rs`).
    pub(super) fn check_sound(&mut self) {
        let (all, video) = self.sound.counts();
        let wanted = self.session.remote_video_wanted();
        match self.guard.handle_tick(Instant::now(), all, video, wanted) {
            Some(GuardChange::Paused) => {
                self.session.limit_remote_video(RemoteVideoLimit::Off);
                // Said once per stretch: a failed trial is no news.
                if !self.video_paused_for_sound {
                    tracing::info!(
                        "downlink losing most packets: remote video paused to keep the sound"
                    );
                    self.video_paused_for_sound = true;
                    self.emit(RoomEvent::RemoteVideoPausedForSound);
                }
            }
            Some(GuardChange::Trial) => {
                self.session.limit_remote_video(RemoteVideoLimit::Lowest);
            }
            Some(GuardChange::Resumed) => {
                self.session.limit_remote_video(RemoteVideoLimit::None);
                self.video_paused_for_sound = false;
                self.emit(RoomEvent::RemoteVideoResumed);
            }
            None => {}
        }
    }
}
