//! The session's side of publishing and of SDP/ICE exchange with the WebRTC layer.

use std::time::Instant;

use super::Session;
use crate::events::SessionEvent;
use crate::ids::TrackSid;
use crate::model::{TrackPublication, TrackRequest, TrackSource};
use crate::negotiation::{NegotiationError, RtcCommand, SignalTarget};
use crate::wire::{self, Outbound};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PublishError {
    #[error("not connected to the room")]
    NotConnected,
    /// The token's grants forbid this source (a student's camera, for instance).
    #[error("this role may not publish {0:?}")]
    NotAllowed(TrackSource),
    #[error("a track with cid {0} is already being published")]
    DuplicateCid(String),
}

impl Session {
    /// Asks the server to accept a new track; it answers with
    /// [`SessionEvent::LocalTrackPublished`] or [`SessionEvent::LocalTrackPublishFailed`].
    /// Add the track to the publisher PC and offer (see [`Session::publisher_offer`]).
    pub fn publish_track(&mut self, request: TrackRequest) -> Result<(), PublishError> {
        self.check_publish(&request)?;
        let add = request;
        self.transmits
            .push_back(wire::encode(Outbound::AddTrack(add.clone())));
        self.pending_tracks.insert(add.cid.clone(), add);
        Ok(())
    }

    /// Whether [`Session::publish_track`] would accept `request`, without sending
    /// anything: check first, then add the track to the PeerConnection, then publish, so
    /// a failure in between leaves no request behind.
    pub fn check_publish(&self, request: &TrackRequest) -> Result<(), PublishError> {
        let local = match &self.local {
            Some(local) if self.signalling() => local,
            _ => return Err(PublishError::NotConnected),
        };
        if !local.permissions.may_publish(request.source) {
            return Err(PublishError::NotAllowed(request.source));
        }
        if self.pending_tracks.contains_key(&request.cid) {
            return Err(PublishError::DuplicateCid(request.cid.clone()));
        }
        Ok(())
    }

    pub(super) fn handle_track_published(&mut self, cid: String, track: TrackPublication) {
        if self.pending_tracks.remove(&cid).is_none() {
            return; // an echo of a request we no longer wait for
        }
        if let Some(local) = &mut self.local {
            local.tracks.retain(|t| t.sid != track.sid);
            local.tracks.push(track.clone());
        }
        self.published
            .insert(track.sid.clone(), (cid.clone(), track.clone()));
        self.events
            .push_back(SessionEvent::LocalTrackPublished { cid, track });
    }

    pub(super) fn handle_track_unpublished(&mut self, track: TrackSid) {
        let Some(local) = &mut self.local else { return };
        local.tracks.retain(|t| t.sid != track);
        if self.published.remove(&track).is_some() {
            let participant = local.sid.clone();
            self.events
                .push_back(SessionEvent::TrackUnpublished { participant, track });
        }
    }

    /// Sends a publisher offer created by the WebRTC layer. Only one may be outstanding;
    /// a second is refused and [`RtcCommand::RenegotiatePublisher`] follows the answer.
    pub fn publisher_offer(&mut self, now: Instant, sdp: String) -> Result<u32, NegotiationError> {
        if !self.signalling() {
            return Err(NegotiationError::NotConnected);
        }
        let id = self.negotiation.offer(now)?;
        self.transmits
            .push_back(wire::encode(Outbound::Offer { id, sdp }));
        Ok(id)
    }

    /// The answer to the server's subscriber offer `id`.
    pub fn subscriber_answer(&mut self, id: u32, sdp: String) {
        if self.signalling() {
            self.transmits
                .push_back(wire::encode(Outbound::Answer { id, sdp }));
        }
    }

    /// The WebRTC layer set a remote description on `target`: queued candidates follow.
    pub fn remote_description_applied(&mut self, target: SignalTarget) {
        let ready = self.negotiation.remote_applied(target);
        self.rtc.extend(ready);
    }

    /// A local ICE candidate (`RTCIceCandidateInit` JSON) gathered by `target`'s PC.
    pub fn local_candidate(&mut self, target: SignalTarget, candidate_init: String) {
        if self.signalling() {
            self.transmits.push_back(wire::encode(Outbound::Trickle {
                target,
                candidate_init,
            }));
        }
    }

    /// The publisher PC changed (a track added or removed): it needs a new offer. Queues
    /// [`RtcCommand::RenegotiatePublisher`] now, or once the outstanding offer is answered;
    /// never two.
    pub fn renegotiate_publisher(&mut self) {
        let queued = self
            .rtc
            .iter()
            .any(|c| matches!(c, RtcCommand::RenegotiatePublisher));
        if !queued && self.negotiation.want_offer() {
            self.rtc.push_back(RtcCommand::RenegotiatePublisher);
        }
    }

    pub fn poll_rtc(&mut self) -> Option<RtcCommand> {
        self.rtc.pop_front()
    }
}
