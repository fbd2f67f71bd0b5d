//! Commands a running participant takes on stdin, one per line, so scripts, demos and tests
//! can drive it mid-call:
//!
//! ```text
//! mute | unmute                 the microphone (the device stays open)
//! camera off | camera on        the camera (off releases the device)
//! mic <ID|default|off>          switch (or close) the microphone
//! speaker <ID|default|off>      switch (or close) the speaker
//! test-sound                    play the speaker test
//! say <text>                    send a chat message
//! leave                         leave the room
//! ```
//!
//! Each is answered by a `command_done` or `command_failed` line; a failed command never
//! ends the participant.

use estrade_devices::{AudioDevices, DeviceChoice};
use estrade_engine::Room;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdinCommand {
    Microphone(bool),
    Camera(bool),
    UseMicrophone(Option<DeviceChoice>),
    UseSpeaker(Option<DeviceChoice>),
    TestSound,
    Say(String),
    Leave,
}

pub fn parse(line: &str) -> Result<StdinCommand, String> {
    let line = line.trim();
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let device = |rest: &str| match rest {
        "" => Err(format!("{word} needs a device id, default or off")),
        "off" => Ok(None),
        choice => Ok(Some(DeviceChoice::parse(choice))),
    };
    match (word, rest) {
        ("mute", "") => Ok(StdinCommand::Microphone(false)),
        ("unmute", "") => Ok(StdinCommand::Microphone(true)),
        ("camera", "off") => Ok(StdinCommand::Camera(false)),
        ("camera", "on") => Ok(StdinCommand::Camera(true)),
        ("mic", rest) => device(rest).map(StdinCommand::UseMicrophone),
        ("speaker", rest) => device(rest).map(StdinCommand::UseSpeaker),
        ("test-sound", "") => Ok(StdinCommand::TestSound),
        ("say", text) if !text.is_empty() => Ok(StdinCommand::Say(text.to_owned())),
        ("leave", "") => Ok(StdinCommand::Leave),
        _ => Err(format!("unknown command: {line}")),
    }
}

/// Carries out `command`; the line to print says how it went.
pub async fn run(command: &StdinCommand, room: &Room, audio: Option<&AudioDevices>) -> Value {
    let no_audio = || "no audio devices open (start with --mic or --speaker)".to_owned();
    let result: Result<(), String> = match command {
        StdinCommand::Microphone(on) => room
            .set_microphone_enabled(*on)
            .await
            .map_err(|e| e.to_string()),
        StdinCommand::Camera(on) => room
            .set_camera_enabled(*on)
            .await
            .map_err(|e| e.to_string()),
        StdinCommand::UseMicrophone(choice) => match audio {
            Some(a) => a
                .use_microphone(choice.clone())
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            None => Err(no_audio()),
        },
        StdinCommand::UseSpeaker(choice) => match audio {
            Some(a) => a
                .use_speaker(choice.clone())
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            None => Err(no_audio()),
        },
        StdinCommand::TestSound => match audio {
            Some(a) => a.play_test_sound().map_err(|e| e.to_string()),
            None => Err(no_audio()),
        },
        StdinCommand::Say(text) => room
            .send_chat(text.clone())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        StdinCommand::Leave => {
            room.leave().await;
            Ok(())
        }
    };
    let name = format!("{command:?}");
    match result {
        Ok(()) => json!({"event": "command_done", "command": name}),
        Err(error) => json!({"event": "command_failed", "command": name, "error": error}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use estrade_devices::AudioDeviceId;

    #[test]
    fn parses_every_command_and_refuses_the_rest() {
        assert_eq!(parse("mute"), Ok(StdinCommand::Microphone(false)));
        assert_eq!(parse(" unmute \n"), Ok(StdinCommand::Microphone(true)));
        assert_eq!(parse("camera off"), Ok(StdinCommand::Camera(false)));
        assert_eq!(
            parse("mic pulseaudio:usb"),
            Ok(StdinCommand::UseMicrophone(Some(DeviceChoice::Id(
                AudioDeviceId("pulseaudio:usb".into())
            ))))
        );
        assert_eq!(
            parse("speaker default"),
            Ok(StdinCommand::UseSpeaker(Some(DeviceChoice::Default)))
        );
        assert_eq!(parse("mic off"), Ok(StdinCommand::UseMicrophone(None)));
        assert_eq!(
            parse("say  Bonjour à tous "),
            Ok(StdinCommand::Say("Bonjour à tous".into()))
        );
        assert_eq!(parse("leave"), Ok(StdinCommand::Leave));
        assert_eq!(parse("test-sound"), Ok(StdinCommand::TestSound));
        for bad in ["", "say", "mic", "camera", "mute now", "rm -rf /"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
