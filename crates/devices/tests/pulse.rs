//! The audio devices on a real audio path: a user-mode PulseAudio (scripts/pulse.sh) whose
//! virtual speaker's sound reaches the virtual microphone through a 50 ms, −10 dB loopback,
//! as on a laptop without headphones. cpal's PulseAudio host runs for real.

mod common;

use std::time::{Duration, Instant};

use common::*;
use estrade_devices::{
    AudioDeviceId, AudioDevices, DeviceChoice, DeviceEvent, DeviceEvents, Direction,
    MicrophoneSource, ProcessingConfig, SwitchReason,
};
use estrade_media::AudioSource as _;

const SPEAKER: &str = "pulseaudio:estrade_speaker";
const MIC: &str = "pulseaudio:estrade_mic";

fn id(s: &str) -> Option<DeviceChoice> {
    Some(DeviceChoice::Id(AudioDeviceId(s.into())))
}

/// Reads the microphone for `seconds`: the samples and when each 20 ms frame arrived.
async fn capture(mic: &mut MicrophoneSource, seconds: f32) -> (Vec<f32>, Vec<Instant>) {
    let mut frame = [0i16; 960];
    let (mut samples, mut arrivals) = (Vec::new(), Vec::new());
    for _ in 0..(seconds * 50.0) as usize {
        tokio::time::timeout(Duration::from_secs(2), mic.next_frame(&mut frame))
            .await
            .expect("a frame within 2 s")
            .expect("the microphone runs");
        arrivals.push(Instant::now());
        samples.extend(frame.iter().map(|&s| f32::from(s) / 32_768.0));
    }
    (samples, arrivals)
}

async fn next_event(
    events: &mut DeviceEvents,
    what: &str,
    mut want: impl FnMut(&DeviceEvent) -> bool,
) -> DeviceEvent {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let e = events.recv().await.expect("the device thread runs");
            if want(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within 5 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PulseAudio: scripts/test.sh starts it"]
async fn lists_the_virtual_devices_and_sees_them_come_and_go() {
    let _turn = serial().await;
    let (devices, mut events) = AudioDevices::start(ProcessingConfig::NONE).unwrap();
    let list = devices.list().await.unwrap();
    let find = |id: &str| list.iter().find(|d| d.id.as_str() == id);
    let (mic, speaker) = (
        find(MIC).expect("the mic"),
        find(SPEAKER).expect("the speaker"),
    );
    assert!(
        mic.is_default && mic.direction == Direction::Input,
        "{mic:?}"
    );
    assert!(speaker.is_default && speaker.direction == Direction::Output);
    assert_eq!(speaker.name, "Estrade_speaker");
    assert!(
        !list.iter().any(|d| d.id.as_str().ends_with(".monitor")),
        "no monitors: {list:?}"
    );
    assert!(find(AudioDeviceId::SYNTHETIC_TONE).is_some());
    assert!(find(AudioDeviceId::SYNTHETIC_SILENT).is_some());

    let usb = headset("estrade_usb", 48_000);
    let added = next_event(&mut events, "the headset listed", |e| {
        matches!(e, DeviceEvent::DevicesChanged { added, .. } if added.iter().any(|d| d.id.as_str() == "pulseaudio:estrade_usb"))
    })
    .await;
    let DeviceEvent::DevicesChanged { devices: now, .. } = added else {
        unreachable!()
    };
    assert!(
        now.iter()
            .any(|d| d.id.as_str() == "pulseaudio:estrade_usb_mic")
    );
    drop(usb);
    next_event(&mut events, "the headset gone", |e| {
        matches!(e, DeviceEvent::DevicesChanged { removed, .. } if removed.iter().any(|d| d.id.as_str() == "pulseaudio:estrade_usb"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PulseAudio: scripts/test.sh starts it"]
async fn what_is_mixed_plays_on_the_speaker_and_what_the_room_hears_is_captured() {
    let _turn = serial().await;
    let (devices, _events) = AudioDevices::start(ProcessingConfig::NONE).unwrap();
    devices.use_speaker(id(SPEAKER)).await.unwrap();
    devices.use_microphone(id(MIC)).await.unwrap();
    let mut mic = devices.microphone_source();
    let monitor = Recorder::start("estrade_speaker.monitor", 48_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A 1 kHz tone into the mix: heard at the speaker's monitor, and (−10 dB, 50 ms later)
    // in the microphone, through the room.
    let mut levels = devices.levels();
    let loudest = tokio::spawn(async move {
        let mut loudest = -100f32;
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::timeout_at(until, levels.changed())
            .await
            .is_ok()
        {
            loudest = loudest.max(levels.borrow().rms_dbfs);
        }
        loudest
    });
    devices
        .play_sound(tone(1000.0, 0.3, 1.0, 48_000).into())
        .unwrap();
    let (heard, _) = capture(&mut mic, 1.5).await;
    let played = monitor.samples();
    let loud: Vec<f32> = played
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 0.05)
        .take(24_000)
        .collect();
    assert!(loud.len() == 24_000, "the tone reached the speaker");
    assert!((dominant(&loud, 48_000, 900, 1100) - 1000.0).abs() <= 1.0);
    assert!(
        (amplitude_at(&loud, 1000.0, 48_000) - 0.3).abs() < 0.03,
        "at its level"
    );
    let echo: Vec<f32> = heard
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 0.02)
        .take(24_000)
        .collect();
    assert_eq!(echo.len(), 24_000, "the microphone heard it");
    assert!((dominant(&echo, 48_000, 900, 1100) - 1000.0).abs() <= 1.0);
    let level = amplitude_at(&echo, 1000.0, 48_000);
    assert!(
        (0.06..0.13).contains(&level),
        "−10 dB through the room: {level}"
    );
    // The level meter saw it: a 0.1 sine is −23 dBFS.
    let loudest = loudest.await.unwrap();
    assert!((-28.0..-18.0).contains(&loudest), "{loudest} dBFS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PulseAudio: scripts/test.sh starts it"]
async fn a_44_1_khz_device_plays_and_captures_at_the_right_pitch() {
    let _turn = serial().await;
    let cd = headset("estrade_cd", 44_100);
    let (devices, _events) = AudioDevices::start(ProcessingConfig::NONE).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    devices
        .use_speaker(id("pulseaudio:estrade_cd"))
        .await
        .unwrap();
    devices
        .use_microphone(id("pulseaudio:estrade_cd_mic"))
        .await
        .unwrap();
    let mut mic = devices.microphone_source();
    let monitor = Recorder::start("estrade_cd.monitor", 44_100);
    tokio::time::sleep(Duration::from_millis(200)).await;
    devices
        .play_sound(tone(1000.0, 0.3, 2.0, 48_000).into())
        .unwrap();
    let (heard, _) = capture(&mut mic, 2.5).await;
    let played = monitor.samples();
    let steady: Vec<f32> = played
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 0.05)
        .skip(4410)
        .take(44_100)
        .collect();
    assert_eq!(steady.len(), 44_100);
    let pitch = dominant(&steady, 44_100, 900, 1100);
    assert!(
        (pitch - 1000.0).abs() <= 1.0,
        "48 kHz mix at 44.1 kHz: {pitch} Hz"
    );
    // Continuous: no sample jumps more than a 0.3 amplitude 1 kHz sine can (0.043).
    let jump = steady
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0f32, f32::max);
    // Where, and whether it is a gap of silence (the sink ran dry: our stream was late)
    // or a jump in phase (samples lost on the way).
    let at = steady.windows(2).position(|w| (w[1] - w[0]).abs() >= 0.06);
    let silent = at.map_or(0, |at| {
        steady[at + 1..]
            .iter()
            .take_while(|s| s.abs() < 1e-4)
            .count()
    });
    assert!(
        jump < 0.06,
        "a discontinuity of {jump} at sample {at:?} of the steady second, {silent} silent samples after it; {:?}",
        devices.stats()
    );
    let captured: Vec<f32> = heard
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 0.05)
        .skip(4800)
        .take(48_000)
        .collect();
    assert_eq!(captured.len(), 48_000);
    let pitch = dominant(&captured, 48_000, 900, 1100);
    assert!(
        (pitch - 1000.0).abs() <= 1.0,
        "44.1 kHz capture at 48 kHz: {pitch} Hz"
    );
    drop(devices);
    drop(cd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PulseAudio: scripts/test.sh starts it"]
async fn unplugging_the_devices_in_use_falls_back_to_the_default_and_they_can_come_back() {
    let _turn = serial().await;
    let usb = headset("estrade_usb2", 48_000);
    let (devices, mut events) = AudioDevices::start(ProcessingConfig::NONE).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    devices
        .use_speaker(id("pulseaudio:estrade_usb2"))
        .await
        .unwrap();
    devices
        .use_microphone(id("pulseaudio:estrade_usb2_mic"))
        .await
        .unwrap();
    let mut mic = devices.microphone_source();
    capture(&mut mic, 0.2).await;
    let Headset { sink, mic: usb_mic } = usb;
    drop(usb_mic);
    drop(sink);
    let mut fell_back = Vec::new();
    for _ in 0..2 {
        let e = next_event(&mut events, "a fall back", |e| {
            matches!(
                e,
                DeviceEvent::Switched {
                    reason: SwitchReason::FellBack { .. },
                    ..
                }
            )
        })
        .await;
        let DeviceEvent::Switched {
            direction, device, ..
        } = e
        else {
            unreachable!()
        };
        fell_back.push((direction, device.id.0));
    }
    fell_back.sort_by_key(|(d, _)| *d == Direction::Output);
    assert_eq!(
        fell_back,
        [
            (Direction::Input, MIC.to_owned()),
            (Direction::Output, SPEAKER.to_owned())
        ]
    );
    // Sound goes on: what is mixed now plays on the default speaker, and the microphone
    // source (the same one) hears the default microphone.
    let monitor = Recorder::start("estrade_speaker.monitor", 48_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    devices
        .play_sound(tone(700.0, 0.3, 0.6, 48_000).into())
        .unwrap();
    let (heard, _) = capture(&mut mic, 1.0).await;
    assert!(
        amplitude_at(&monitor.samples(), 700.0, 48_000) > 0.02,
        "played on the default"
    );
    assert!(
        amplitude_at(&heard, 700.0, 48_000) > 0.005,
        "heard on the default mic"
    );
    // Plugged in again: listed, and it can be chosen.
    let usb = headset("estrade_usb2", 48_000);
    next_event(&mut events, "the headset back", |e| {
        matches!(e, DeviceEvent::DevicesChanged { added, .. } if added.iter().any(|d| d.id.as_str() == "pulseaudio:estrade_usb2"))
    })
    .await;
    devices
        .use_speaker(id("pulseaudio:estrade_usb2"))
        .await
        .unwrap();
    drop(devices);
    drop(usb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PulseAudio: scripts/test.sh starts it"]
async fn switching_the_microphone_and_speaker_mid_stream_leaves_no_gap() {
    let _turn = serial().await;
    // Two speakers that both play into one bus: one recording of the bus shows the gap
    // between the sound leaving the first and arriving on the second, by content.
    let bus = Module::load(&["module-null-sink", "sink_name=estrade_bus", "rate=48000"]);
    let speakers: Vec<Module> = ["estrade_left", "estrade_right"]
        .iter()
        .map(|name| {
            Module::load(&[
                "module-remap-sink",
                &format!("sink_name={name}"),
                "master=estrade_bus",
                "rate=48000",
            ])
        })
        .collect();
    let other_mic = headset("estrade_other", 48_000);
    let (devices, _events) = AudioDevices::start(ProcessingConfig::NONE).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    devices
        .use_speaker(id("pulseaudio:estrade_left"))
        .await
        .unwrap();
    devices.use_microphone(id(MIC)).await.unwrap();
    let mut mic = devices.microphone_source();
    capture(&mut mic, 0.5).await;
    let bus_heard = Recorder::start("estrade_bus.monitor", 48_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    devices
        .play_sound(tone(500.0, 0.3, 3.0, 48_000).into())
        .unwrap();
    let reading = tokio::spawn(async move {
        let got = capture(&mut mic, 2.0).await;
        (mic, got)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let switched = Instant::now();
    devices
        .use_speaker(id("pulseaudio:estrade_right"))
        .await
        .unwrap();
    let speaker_took = switched.elapsed();
    devices
        .use_microphone(id("pulseaudio:estrade_other_mic"))
        .await
        .unwrap();
    eprintln!(
        "switching took {speaker_took:?} (speaker), {:?} (both)",
        switched.elapsed()
    );
    let (_mic, (_, arrivals)) = reading.await.unwrap();
    let longest = arrivals.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        longest < Duration::from_millis(100),
        "microphone frames stopped for {longest:?}"
    );
    // The longest quiet stretch inside the 3 s tone, on the bus: the switch's gap.
    let enough = (3.6 * 48_000.0) as usize;
    let recorded = eventually(Duration::from_secs(6), || {
        bus_heard.snapshot().len() > enough
    })
    .await;
    assert!(recorded, "the bus recording lags");
    let samples = bus_heard.samples();
    let loud: Vec<usize> = (0..samples.len())
        .filter(|&i| samples[i].abs() > 0.05)
        .collect();
    let (first, last) = (loud[0], *loud.last().unwrap());
    let longest_quiet = loud.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    let gap = Duration::from_secs_f64(longest_quiet as f64 / 48_000.0);
    let heard = Duration::from_secs_f64((last - first) as f64 / 48_000.0);
    eprintln!("speaker gap {gap:?}; the tone lasted {heard:?}");
    assert!(
        gap < Duration::from_millis(100),
        "the tone stopped for {gap:?}"
    );
    assert!(heard > Duration::from_millis(2800), "cut short: {heard:?}");
    drop(devices);
    drop((speakers, bus, other_mic));
}

/// Far-end speech through the speaker, its echo in the microphone; then a near-end talker
/// too. With processing on, the echo is mostly gone and the talker stays; off, the echo is
/// all there. (The full figures, against libwebrtc, are in the bench.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PulseAudio: scripts/test.sh starts it"]
async fn the_echo_of_the_speaker_is_cancelled_and_the_talker_is_kept() {
    let _turn = serial().await;
    let far = speech(
        "far",
        "fr",
        "Bonjour à tous, aujourd'hui nous parlons de la sécurité des réseaux. Posez vos questions dans le chat, je répondrai à la fin.",
    );
    let near = speech(
        "near",
        "en",
        "Excuse me, I have a question about the second slide please.",
    );
    let mut results = Vec::new();
    for config in [ProcessingConfig::ALL, ProcessingConfig::NONE] {
        let (devices, _events) = AudioDevices::start(config).unwrap();
        devices.use_speaker(id(SPEAKER)).await.unwrap();
        devices.use_microphone(id(MIC)).await.unwrap();
        let mut mic = devices.microphone_source();
        capture(&mut mic, 0.3).await;
        devices.play_sound(far.clone()).unwrap();
        // Far end alone for 6 s (the canceller converges in the first two), then the
        // near-end talker over it.
        let (echo_only, _) = capture(&mut mic, 6.0).await;
        let talker = play("estrade_nearend", &near, 48_000);
        let (double_talk, _) = capture(&mut mic, 3.0).await;
        drop(talker);
        results.push((echo_only, rms_db(&double_talk)));
    }
    let [(on_echo, on_double), (off_echo, off_double)] = &results[..] else {
        unreachable!()
    };
    // Per 100 ms of the last 3 s of far end alone (the canceller converged in the first
    // two): how much quieter the processed echo is than the raw one, where the far end
    // speaks. The median, so that one leak does not decide (the bench shows those).
    let chunk = |s: &[f32]| {
        s[3 * 48_000..]
            .chunks(4_800)
            .map(rms_db)
            .collect::<Vec<_>>()
    };
    let (on, off) = (chunk(on_echo), chunk(off_echo));
    let mut removed: Vec<f32> = on
        .iter()
        .zip(&off)
        .filter(|(_, raw)| **raw > -40.0)
        .map(|(processed, raw)| raw - processed)
        .collect();
    removed.sort_by(f32::total_cmp);
    let median = removed[removed.len() / 2];
    let low = removed[removed.len() / 5];
    eprintln!(
        "echo removed per 100 ms: median {median:.1} dB, 20th percentile {low:.1} dB ({} chunks); \
         double talk: {on_double:.1} dBFS processed, {off_double:.1} raw",
        removed.len()
    );
    assert!(removed.len() >= 15, "the far end spoke: {off:?}");
    assert!(median > 25.0, "echo removed: {median:.1} dB ({removed:?})");
    assert!(low > 15.0, "leaks: {removed:?}");
    let on_tail = rms_db(&on_echo[3 * 48_000..]);
    assert!(
        on_double - on_tail > 15.0,
        "the talker stands out of what is left"
    );
}
