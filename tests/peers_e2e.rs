//! hotlined against real, independent peers on loopback: sipp callers with RTP and DTMF
//! (RFC 4733 and in-band), baresip as a softphone recording what it hears, and a barrage of
//! malformed datagrams. Missing sipp or baresip fails these tests (naming the Debian
//! package); nothing here skips.

#[path = "support/audio.rs"]
mod audio;
#[path = "support/baresip.rs"]
mod baresip;
#[path = "support/sipp.rs"]
mod sipp;
#[path = "support/tools.rs"]
mod tools;

use hotline::media::dtmf::InbandDetector;
use hotline::media::g711::G711Codec;
use std::path::Path;
use std::time::Duration;

fn prompt(name: &str) -> Vec<i16> {
    audio::read_wav(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sounds/zh-CN")
            .join(format!("{name}.wav")),
    )
}

/// What a G.711 µ-law link does to audio.
fn through_pcmu(pcm: &[i16]) -> Vec<i16> {
    let mut out = Vec::new();
    G711Codec::Pcmu.decode_into(&audio::pcmu(pcm), &mut out);
    out
}

#[test]
fn prompt_detector_finds_the_welcome_prompt_and_only_it() {
    let welcome = prompt("welcome");
    // 1.234 s of a quiet hum, the prompt through µ-law, then another prompt.
    let mut recording = audio::tone(150.0, 300.0, Duration::from_millis(1234));
    recording.extend(through_pcmu(&welcome));
    recording.extend(prompt("goodbye"));
    let heard = audio::find_prompt(&recording, &welcome);
    assert!(heard.score > 0.99, "{heard:?}");
    assert_eq!(heard.offset.as_millis(), 1234, "{heard:?}");
    assert!(heard.matched >= Duration::from_secs(7), "{heard:?}");

    let other = [prompt("goodbye"), prompt("recording_notice")].concat();
    let not_heard = audio::find_prompt(&other, &welcome);
    assert!(not_heard.score < 0.5, "{not_heard:?}");
    assert!(not_heard.matched < Duration::from_secs(2), "{not_heard:?}");
    let silence = vec![0i16; 10 * audio::RATE];
    assert_eq!(audio::find_prompt(&silence, &welcome).score, 0.0);
}

#[test]
fn inband_key_audio_survives_pcmu_and_our_detector_reads_it() {
    let keys = audio::inband_keys("2*#9", Duration::from_millis(500), Duration::from_secs(3));
    assert_eq!(keys.len(), 3 * audio::RATE);
    let heard: String = InbandDetector::default()
        .on_audio(&through_pcmu(&keys), Duration::ZERO)
        .iter()
        .map(|d| d.digit)
        .collect();
    assert_eq!(heard, "2*#9");
    assert!(audio::level_dbfs(&keys) > -30.0);
}
