//! Our publications: microphone and camera. Publishing sends an AddTrackRequest (the session
//! checks the token's sources first: a student's camera is a typed error and nothing is
//! sent), adds a sendonly track and renegotiates; muting sends a MuteTrackRequest and stops
//! the media without renegotiation; unpublishing removes the track and renegotiates.

use estrade_rtc::LocalTrack;
use estrade_session::{
    ParticipantSid, SessionEvent, TrackKind, TrackRequest, TrackSid, TrackSource,
};

use tokio::sync::watch;

use super::{Driver, Publication, Publishing, PumpControl, new_stream_id};
use crate::events::{LocalTrackEndReason, RoomEvent};
use crate::room::CommandError;

impl Driver {
    pub(super) async fn publish(
        &mut self,
        what: Publishing,
    ) -> Result<(LocalTrack, PumpControl), CommandError> {
        let (source, kind, name, width, height, video) = match what {
            Publishing::Microphone => (
                TrackSource::Microphone,
                TrackKind::Audio,
                "microphone",
                0,
                0,
                None,
            ),
            Publishing::Camera { codec, layers } => {
                let full = layers.last().map_or((0, 0), |l| (l.width, l.height));
                (
                    TrackSource::Camera,
                    TrackKind::Video,
                    "camera",
                    full.0,
                    full.1,
                    Some((codec, layers)),
                )
            }
        };
        if self.published.iter().any(|p| p.source == source) {
            return Err(CommandError::AlreadyPublished);
        }
        let cid = format!("{name}-{}", new_stream_id());
        let request = TrackRequest {
            cid: cid.clone(),
            name: name.into(),
            kind,
            source,
            width,
            height,
            muted: false,
            // Every video track says its layers (one: quality HIGH, rid `f`), as the SDKs do.
            layers: video
                .as_ref()
                .map(|(_, layers)| layers.clone())
                .unwrap_or_default(),
        };
        // Checked, then on the PeerConnection, then asked of the server: the server never
        // hears of a track we failed to add.
        self.session.check_publish(&request)?;
        let asked = request.clone();
        let added = match &video {
            None => self.pcs.add_audio_track(&cid, "estrade").await,
            Some((codec, layers)) => {
                let rids: Vec<&str> = layers.iter().map(|l| l.rid.as_str()).collect();
                self.pcs
                    .add_video_track(&cid, "estrade", *codec, &rids)
                    .await
            }
        };
        let track = added.map_err(|e| CommandError::Media(e.to_string()))?;
        if let Err(e) = self.session.publish_track(request) {
            let _ = self.pcs.remove_track(&track).await;
            return Err(e.into());
        }
        self.session.renegotiate_publisher();
        let (enabled, enabled_rx) = watch::channel(true);
        let (policy, mut policy_rx) = watch::channel(self.new_video_policy());
        self.published.push(Publication {
            source,
            cid,
            request: asked,
            track: track.clone(),
            sid: None,
            enabled,
            policy: video.is_some().then_some(policy),
        });
        if video.is_some() {
            self.uplink_ceiling_changed();
            // The pump applies the current share from its first frame.
            policy_rx.mark_changed();
        }
        let control = PumpControl {
            enabled: enabled_rx,
            policy: policy_rx,
        };
        Ok((track, control))
    }

    /// Takes the track off the publisher PC and renegotiates: the server ends it when its
    /// m-line goes inactive (there is no signal message for it). Dropping the `enabled`
    /// sender stops the media task.
    pub(super) async fn unpublish(&mut self, source: TrackSource) -> Result<(), CommandError> {
        let at = self
            .published
            .iter()
            .position(|p| p.source == source)
            .ok_or(CommandError::NotPublished)?;
        let publication = self.published.remove(at);
        self.uplink_ceiling_changed();
        self.pcs
            .remove_track(&publication.track)
            .await
            .map_err(|e| CommandError::Media(e.to_string()))?;
        self.session.renegotiate_publisher();
        Ok(())
    }

    pub(super) fn set_enabled(
        &mut self,
        source: TrackSource,
        enabled: bool,
    ) -> Result<(), CommandError> {
        let publication = self
            .published
            .iter()
            .find(|p| p.source == source)
            .ok_or(CommandError::NotPublished)?;
        publication.enabled.send_replace(enabled);
        if let Some(sid) = &publication.sid {
            self.session.set_track_muted(sid, !enabled);
        }
        self.pending.push_back(if enabled {
            RoomEvent::LocalTrackUnmuted { source }
        } else {
            RoomEvent::LocalTrackMuted {
                source,
                by_server: false,
            }
        });
        Ok(())
    }

    /// What the server decided about our own tracks is carried out here, before the
    /// application hears of it: a server mute stops the pump, an unpublish or a refusal
    /// stops it and frees the source (a later publish is not "already published").
    /// Returns what to tell the application, after the session's own event.
    pub(super) async fn obey_server(&mut self, event: &SessionEvent) -> Option<RoomEvent> {
        let local = self.session.local().map(|l| l.sid.clone());
        let ours = |participant: &ParticipantSid| Some(participant) == local.as_ref();
        match event {
            SessionEvent::LocalTrackPublished { cid, track } => {
                self.local_track_published(cid, &track.sid);
                None
            }
            SessionEvent::TrackMuted { participant, track } if ours(participant) => {
                let p = &self.published[self.publication_of(track)?];
                // Already muted by us: nothing changes for the user.
                if !p.enabled.send_replace(false) {
                    return None;
                }
                Some(RoomEvent::LocalTrackMuted {
                    source: p.source,
                    by_server: true,
                })
            }
            SessionEvent::TrackUnmuted { participant, track } if ours(participant) => {
                // Unmuting is the user's decision: if we are muted, the server hears so.
                let p = &self.published[self.publication_of(track)?];
                if !*p.enabled.borrow() {
                    self.session.set_track_muted(track, true);
                }
                None
            }
            SessionEvent::TrackUnpublished { participant, track } if ours(participant) => {
                let at = self.publication_of(track)?;
                Some(
                    self.end_publication(at, LocalTrackEndReason::Unpublished)
                        .await,
                )
            }
            SessionEvent::LayersWanted { track, wanted } => {
                self.layers_wanted(track, wanted);
                None
            }
            SessionEvent::LocalTrackPublishFailed { cid, reason } => {
                let at = self.published.iter().position(|p| p.cid == *cid)?;
                let reason = LocalTrackEndReason::Refused(reason.clone());
                Some(self.end_publication(at, reason).await)
            }
            _ => None,
        }
    }

    /// Which of our publications the server calls `track`.
    fn publication_of(&self, track: &TrackSid) -> Option<usize> {
        self.published
            .iter()
            .position(|p| p.sid.as_ref() == Some(track))
    }

    /// Drops publication `at` (its pump stops with its `enabled` sender) and takes its
    /// track off the publisher PC.
    pub(super) async fn end_publication(
        &mut self,
        at: usize,
        reason: LocalTrackEndReason,
    ) -> RoomEvent {
        let publication = self.published.remove(at);
        self.uplink_ceiling_changed();
        if let Err(e) = self.pcs.remove_track(&publication.track).await {
            // The m-line stays; the server has ended the track anyway.
            tracing::warn!(error = %e, "could not take an ended track off the connection");
        }
        self.session.renegotiate_publisher();
        RoomEvent::LocalTrackEnded {
            source: publication.source,
            reason,
        }
    }

    /// The server accepted one of ours: remember its sid (a mute before this is sent now).
    pub(super) fn local_track_published(&mut self, cid: &str, sid: &TrackSid) {
        if let Some(p) = self.published.iter_mut().find(|p| p.cid == cid) {
            p.sid = Some(sid.clone());
            // The user changed their mind since the request (muted or unmuted): say so.
            let muted = !*p.enabled.borrow();
            if muted != p.request.muted {
                self.session.set_track_muted(sid, muted);
            }
        }
    }
}
