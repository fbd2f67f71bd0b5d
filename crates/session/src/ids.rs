//! Server identifiers as newtypes, so a track sid can never be passed as a participant's.

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id!(
    /// `PA_…`: one participant's connection; a rejoin gets a new one.
    ParticipantSid
);
id!(
    /// Who the participant is (the backend's user id); stable across rejoins.
    ParticipantIdentity
);
id!(
    /// `TR_…`: one published track.
    TrackSid
);
