//! Remote video limited from our side over the application's settings: the engine's
//! sound guard does it when our downlink cannot carry the video and the sound together.
//! The application's settings (tile sizes, hidden tiles) are kept, and asked for again
//! when the limit ends.

use super::Session;
use crate::ids::TrackSid;
use crate::model::{TrackKind, TrackSettings};
use crate::wire::{self, Outbound};

/// No settings from the application: on, the best layer (what the server sends a
/// subscriber that never sent any).
pub(crate) const UNSET: TrackSettings = TrackSettings {
    enabled: true,
    width: 0,
    height: 0,
};
/// The size the lowest simulcast layer of a 16:9 camera fits (LiveKit's `q` layer).
const LOWEST: (u32, u32) = (320, 180);

/// How much remote video we let through, whatever the application asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemoteVideoLimit {
    /// What the application asked for.
    #[default]
    None,
    /// At most the lowest layer.
    Lowest,
    /// None at all.
    Off,
}

impl Session {
    /// Limits every remote video, or lifts the limit (`None`). Sent at once when
    /// signalling; after a reconnect the limit still holds.
    pub fn limit_remote_video(&mut self, limit: RemoteVideoLimit) {
        if self.video_limit == limit {
            return;
        }
        self.video_limit = limit;
        if !self.signalling() {
            return;
        }
        let videos: Vec<TrackSid> = self
            .roster
            .tracks()
            .filter(|t| t.kind == TrackKind::Video)
            .map(|t| t.sid.clone())
            .collect();
        for track in videos {
            let settings = self.track_settings.get(&track).copied().unwrap_or(UNSET);
            self.send_track_settings(track, settings);
        }
    }

    /// Whether the application wants some remote video (one is published and not turned
    /// off by `set_track_settings`): the sound guard has something to pause.
    pub fn remote_video_wanted(&self) -> bool {
        self.roster
            .tracks()
            .filter(|t| t.kind == TrackKind::Video)
            .any(|t| self.track_settings.get(&t.sid).is_none_or(|s| s.enabled))
    }

    /// Sends `settings` for `track`, within the limit.
    pub(crate) fn send_track_settings(&mut self, track: TrackSid, settings: TrackSettings) {
        let settings = match self.video_limit {
            RemoteVideoLimit::None => settings,
            RemoteVideoLimit::Off => TrackSettings {
                enabled: false,
                ..settings
            },
            RemoteVideoLimit::Lowest => {
                let fits = settings.width != 0 && settings.width <= LOWEST.0;
                let (width, height) = if fits {
                    (settings.width, settings.height)
                } else {
                    LOWEST
                };
                TrackSettings {
                    enabled: settings.enabled,
                    width,
                    height,
                }
            }
        };
        self.transmits
            .push_back(wire::encode(Outbound::TrackSettings { track, settings }));
    }
}
