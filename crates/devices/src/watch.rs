//! Device changes, found by comparing two listings: cpal 0.18 has no hot-plug callback on
//! any host, so the device thread lists once a second and reports the difference. Sans-IO.

use crate::device::{AudioDeviceId, AudioDeviceInfo, Direction};

/// What changed between two listings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListChange {
    pub added: Vec<AudioDeviceInfo>,
    pub removed: Vec<AudioDeviceInfo>,
    /// A direction whose default device changed, and the new default (`None`: none left).
    pub new_defaults: Vec<(Direction, Option<AudioDeviceId>)>,
}

impl ListChange {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.new_defaults.is_empty()
    }
}

/// The last listing.
#[derive(Debug, Default)]
pub struct DeviceWatch {
    last: Vec<AudioDeviceInfo>,
}

impl DeviceWatch {
    pub fn new(first: Vec<AudioDeviceInfo>) -> Self {
        Self { last: first }
    }

    pub fn current(&self) -> &[AudioDeviceInfo] {
        &self.last
    }

    /// Whether `id` is listed (for `direction`).
    pub fn contains(&self, direction: Direction, id: &AudioDeviceId) -> bool {
        self.last
            .iter()
            .any(|d| d.direction == direction && &d.id == id)
    }

    /// Takes a new listing and says what differs from the last one.
    pub fn update(&mut self, now: Vec<AudioDeviceInfo>) -> ListChange {
        let same =
            |a: &AudioDeviceInfo, b: &AudioDeviceInfo| a.id == b.id && a.direction == b.direction;
        let added = now
            .iter()
            .filter(|d| !self.last.iter().any(|l| same(l, d)))
            .cloned()
            .collect();
        let removed = self
            .last
            .iter()
            .filter(|l| !now.iter().any(|d| same(l, d)))
            .cloned()
            .collect();
        let default = |list: &[AudioDeviceInfo], direction| {
            list.iter()
                .find(|d| d.direction == direction && d.is_default)
                .map(|d| d.id.clone())
        };
        let new_defaults = [Direction::Input, Direction::Output]
            .into_iter()
            .filter_map(|dir| {
                let (before, after) = (default(&self.last, dir), default(&now, dir));
                (before != after).then_some((dir, after))
            })
            .collect();
        self.last = now;
        ListChange {
            added,
            removed,
            new_defaults,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str, direction: Direction, is_default: bool) -> AudioDeviceInfo {
        AudioDeviceInfo {
            id: AudioDeviceId(id.into()),
            name: id.into(),
            direction,
            is_default,
        }
    }

    #[test]
    fn reports_added_removed_and_default_changes_once() {
        let mut watch = DeviceWatch::new(vec![
            dev("mic", Direction::Input, true),
            dev("speaker", Direction::Output, true),
        ]);
        assert!(watch.update(watch.current().to_vec()).is_empty());
        // A headset arrives and becomes the default output.
        let change = watch.update(vec![
            dev("mic", Direction::Input, true),
            dev("speaker", Direction::Output, false),
            dev("headset", Direction::Output, true),
        ]);
        assert_eq!(change.added, [dev("headset", Direction::Output, true)]);
        assert!(change.removed.is_empty());
        assert_eq!(
            change.new_defaults,
            [(Direction::Output, Some(AudioDeviceId("headset".into())))]
        );
        assert!(watch.contains(Direction::Output, &AudioDeviceId("headset".into())));
        assert!(!watch.contains(Direction::Input, &AudioDeviceId("headset".into())));
        // Unplugged again: the default goes back to the speaker.
        let change = watch.update(vec![
            dev("mic", Direction::Input, true),
            dev("speaker", Direction::Output, true),
        ]);
        assert_eq!(change.removed, [dev("headset", Direction::Output, true)]);
        assert_eq!(
            change.new_defaults,
            [(Direction::Output, Some(AudioDeviceId("speaker".into())))]
        );
        // The microphone goes and nothing replaces it.
        let change = watch.update(vec![dev("speaker", Direction::Output, true)]);
        assert_eq!(change.new_defaults, [(Direction::Input, None)]);
    }
}
