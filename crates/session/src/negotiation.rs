//! SDP and ICE bookkeeping for the two PeerConnections (dual-PC, as LiveKit's `/rtc` path
//! wants it): the publisher PC where we offer, the subscriber PC where the server offers.
//! The WebRTC layer does the SDP work; this decides what goes where and when.

use std::collections::BTreeMap;

use crate::ids::TrackSid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalTarget {
    Publisher,
    Subscriber,
}

/// What the WebRTC layer must do next, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcCommand {
    /// Set the server's offer on the subscriber PC, answer it, and hand the answer to
    /// `Session::subscriber_answer` with the same `id` (within 15 s).
    ApplySubscriberOffer {
        id: u32,
        sdp: String,
        /// m-line mid → the track it carries.
        mid_to_track: BTreeMap<String, TrackSid>,
    },
    /// Set the server's answer on the publisher PC.
    ApplyPublisherAnswer {
        id: u32,
        sdp: String,
        mid_to_track: BTreeMap<String, TrackSid>,
    },
    /// A remote ICE candidate (`RTCIceCandidateInit` JSON), only ever after the remote
    /// description of that PC was applied.
    AddRemoteCandidate {
        target: SignalTarget,
        candidate_init: String,
    },
    /// Something changed while an offer was outstanding: create a new publisher offer.
    RenegotiatePublisher,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NegotiationError {
    #[error("a publisher offer is already waiting for its answer; offer again after it")]
    OfferOutstanding,
    #[error("not connected")]
    NotConnected,
}

#[derive(Default)]
pub(crate) struct Negotiation {
    next_offer_id: u32,
    /// Our offer waiting for the server's answer.
    outstanding: Option<u32>,
    renegotiate: bool,
    publisher_remote_set: bool,
    subscriber_remote_set: bool,
    queued: Vec<(SignalTarget, String)>,
}

impl Negotiation {
    pub fn offer(&mut self) -> Result<u32, NegotiationError> {
        if self.outstanding.is_some() {
            self.renegotiate = true;
            return Err(NegotiationError::OfferOutstanding);
        }
        self.next_offer_id += 1;
        self.outstanding = Some(self.next_offer_id);
        Ok(self.next_offer_id)
    }

    /// A new publisher offer is wanted: `true` to offer now, `false` if it will follow the
    /// answer to the outstanding one.
    pub fn want_offer(&mut self) -> bool {
        if self.outstanding.is_some() {
            self.renegotiate = true;
            false
        } else {
            true
        }
    }

    /// The server answered offer `id`. `None`: not the answer we wait for (stale, unknown).
    pub fn answered(&mut self, id: u32) -> Option<bool> {
        if self.outstanding != Some(id) {
            return None;
        }
        self.outstanding = None;
        Some(std::mem::take(&mut self.renegotiate))
    }

    /// A candidate from the server: now if its PC can take it, else later.
    pub fn remote_candidate(
        &mut self,
        target: SignalTarget,
        candidate: String,
    ) -> Option<RtcCommand> {
        if self.remote_set(target) {
            Some(RtcCommand::AddRemoteCandidate {
                target,
                candidate_init: candidate,
            })
        } else {
            self.queued.push((target, candidate));
            None
        }
    }

    /// The WebRTC layer applied a remote description: release that PC's queued candidates.
    pub fn remote_applied(&mut self, target: SignalTarget) -> Vec<RtcCommand> {
        match target {
            SignalTarget::Publisher => self.publisher_remote_set = true,
            SignalTarget::Subscriber => self.subscriber_remote_set = true,
        }
        let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queued)
            .into_iter()
            .partition(|(t, _)| *t == target);
        self.queued = rest;
        ready
            .into_iter()
            .map(|(target, candidate_init)| RtcCommand::AddRemoteCandidate {
                target,
                candidate_init,
            })
            .collect()
    }

    fn remote_set(&self, target: SignalTarget) -> bool {
        match target {
            SignalTarget::Publisher => self.publisher_remote_set,
            SignalTarget::Subscriber => self.subscriber_remote_set,
        }
    }
}
