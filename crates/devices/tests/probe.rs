use std::time::Duration;
use estrade_devices::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe() {
    let (devices, mut events) = AudioDevices::start(ProcessingConfig::default()).unwrap();
    for d in devices.list().await.unwrap() { eprintln!("{d:?}"); }
    let spk = devices.use_speaker(Some(DeviceChoice::Default)).await;
    eprintln!("speaker {spk:?}");
    let t = std::time::Instant::now();
    let mic = devices.use_microphone(Some(DeviceChoice::Default)).await;
    eprintln!("mic {mic:?} in {:?}", t.elapsed());
    let mut src = devices.microphone_source();
    let levels = devices.levels();
    let mut frame = [0i16; 960];
    use estrade_media::AudioSource;
    let wav = std::fs::read("/tmp/far.wav").unwrap();
    let speech: std::sync::Arc<[f32]> = wav[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    for round in 0..4 {
        if round % 6 == 0 { let _ = &speech; } devices.play_test_sound().unwrap();
        let mut peaks = Vec::new();
        for _ in 0..150 {
            src.next_frame(&mut frame).await.unwrap();
            peaks.push(frame.iter().map(|s| s.unsigned_abs()).max().unwrap());
        }
        let first = peaks.iter().position(|p| *p > 1000);
        eprintln!("round {round}: max {:?} first loud frame {first:?} stats {:?}", peaks.iter().max(), devices.processing().1);
    }
    eprintln!("level {:?} stats {:?} {:?}", *levels.borrow(), devices.stats(), devices.processing());
    while let Ok(e) = events.try_recv() { eprintln!("event {e:?}"); }
    tokio::time::sleep(Duration::from_millis(100)).await;
}
