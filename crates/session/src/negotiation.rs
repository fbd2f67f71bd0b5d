//! SDP and ICE bookkeeping for the two PeerConnections (dual-PC, as LiveKit's `/rtc` path
//! wants it): the publisher PC where we offer, the subscriber PC where the server offers.
//! The WebRTC layer does the SDP work; this decides what goes where and when.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ids::TrackSid;

/// Remote candidates held until their PC has its remote description. A server sends a
/// handful (one per address and protocol); beyond this it is not a server we can trust.
pub const MAX_QUEUED_CANDIDATES: usize = 64;
/// An `RTCIceCandidateInit` is ~200 bytes of JSON; a longer one is refused unread.
pub const MAX_CANDIDATE_BYTES: usize = 2048;
/// How long the server has to answer a publisher offer. Past it the offer is made again
/// (a lost answer must not block every later publish), and after [`OFFER_ATTEMPTS`] the
/// session is declared broken.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(10);
pub const OFFER_ATTEMPTS: u32 = 3;

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
    /// A resume: create a publisher offer with an ICE restart (new credentials) and hand
    /// it to `Session::publisher_offer`; the server restarts the subscriber with a new offer.
    RestartPublisherIce,
    /// A full reconnect: close both PeerConnections, make new ones (with
    /// `Session::ice_servers`), make the first publisher offer, publish our tracks again.
    ReplacePeerConnections,
}

/// A remote candidate refused: the server sent more, or longer, than any server does.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CandidateRefused {
    #[error("more than {MAX_QUEUED_CANDIDATES} candidates before the remote description")]
    TooMany,
    #[error("a candidate of {0} bytes (at most {MAX_CANDIDATE_BYTES})")]
    TooLong(usize),
}

/// What a publisher offer's deadline decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OfferExpiry {
    /// Offer again (attempt number, from 2).
    Retry(u32),
    /// [`OFFER_ATTEMPTS`] offers went unanswered.
    GiveUp,
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
    /// Our offer waiting for the server's answer, and when it expires.
    outstanding: Option<(u32, Instant)>,
    /// Offers made in a row without an answer.
    unanswered: u32,
    renegotiate: bool,
    publisher_remote_set: bool,
    subscriber_remote_set: bool,
    queued: Vec<(SignalTarget, String)>,
}

impl Negotiation {
    pub fn offer(&mut self, now: Instant) -> Result<u32, NegotiationError> {
        if self.outstanding.is_some() {
            self.renegotiate = true;
            return Err(NegotiationError::OfferOutstanding);
        }
        self.next_offer_id = self.next_offer_id.wrapping_add(1);
        self.outstanding = Some((self.next_offer_id, now + OFFER_TIMEOUT));
        self.unanswered += 1;
        Ok(self.next_offer_id)
    }

    /// A resume: an offer outstanding on the old socket will never be answered, and the
    /// next one restarts ICE. Remote descriptions stay applied.
    pub fn restart(&mut self) {
        self.outstanding = None;
        self.unanswered = 0;
        self.renegotiate = false;
        self.queued.clear();
    }

    /// When the outstanding offer expires.
    pub fn deadline(&self) -> Option<Instant> {
        self.outstanding.map(|(_, at)| at)
    }

    /// Past the deadline: the offer is forgotten (its late answer will be refused as
    /// stale) and another is wanted, or we give up.
    pub fn expire(&mut self, now: Instant) -> Option<OfferExpiry> {
        let (_, at) = self.outstanding?;
        if now < at {
            return None;
        }
        self.outstanding = None;
        self.renegotiate = false;
        Some(if self.unanswered >= OFFER_ATTEMPTS {
            OfferExpiry::GiveUp
        } else {
            OfferExpiry::Retry(self.unanswered + 1)
        })
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
        if self.outstanding.map(|(o, _)| o) != Some(id) {
            return None;
        }
        self.outstanding = None;
        self.unanswered = 0;
        Some(std::mem::take(&mut self.renegotiate))
    }

    /// A candidate from the server: now if its PC can take it, else later.
    pub fn remote_candidate(
        &mut self,
        target: SignalTarget,
        candidate: String,
    ) -> Result<Option<RtcCommand>, CandidateRefused> {
        if candidate.len() > MAX_CANDIDATE_BYTES {
            return Err(CandidateRefused::TooLong(candidate.len()));
        }
        if self.remote_set(target) {
            Ok(Some(RtcCommand::AddRemoteCandidate {
                target,
                candidate_init: candidate,
            }))
        } else if self.queued.len() >= MAX_QUEUED_CANDIDATES {
            Err(CandidateRefused::TooMany)
        } else {
            self.queued.push((target, candidate));
            Ok(None)
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
