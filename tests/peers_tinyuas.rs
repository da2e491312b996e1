//! SCRATCH (not committed): validates the peer harness against the recipe's tinyuas.py.
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

const RECIPES: &str = "/work/shared/recipes/final";

fn welcome() -> Vec<i16> {
    audio::read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds/zh-CN/welcome.wav"))
}

async fn tinyuas(port: u16, calls: u32, out: &Path) -> tokio::process::Child {
    std::fs::write(out.join("welcome.ulaw"), audio::pcmu(&welcome())).unwrap();
    let child = tokio::process::Command::new("python3")
        .current_dir(RECIPES)
        .args([
            "tinyuas.py",
            "--port",
            &port.to_string(),
            "--calls",
            &calls.to_string(),
            "--timeout",
            "40",
            "--bye-after",
            "5",
        ])
        .arg("--play")
        .arg(out.join("welcome.ulaw"))
        .arg("--outdir")
        .arg(out)
        .stdout(std::fs::File::create(out.join("uas.jsonl")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    child
}

#[tokio::test]
async fn sipp_rfc4733_and_inband_against_tinyuas() {
    let out = tempfile::tempdir().unwrap();
    let port = sipp::free_udp_port(1);
    let mut uas = tinyuas(port, 2, out.path()).await;
    let target = format!("127.0.0.1:{port}").parse().unwrap();
    let voice = audio::pcmu(&audio::tone(1000.0, 3000.0, Duration::from_secs(5)));
    sipp::Sipp {
        vars: &[
            ("caller", "13812345678"),
            ("dtmf", "rfc4733"),
            ("digits", "12#"),
            ("wait_ms", "1000"),
            ("hold_ms", "2500"),
            ("ends", "caller"),
        ],
        files: &[("caller.ulaw", &voice)],
        ..sipp::Sipp::new("uac_media.xml", target)
    }
    .run_ok()
    .await;
    let keys = audio::pcmu(&audio::inband_keys(
        "5*0",
        Duration::from_millis(800),
        Duration::from_secs(3),
    ));
    sipp::Sipp {
        vars: &[
            ("caller", "13812345678"),
            ("dtmf", "inband"),
            ("digits", ""),
            ("wait_ms", "0"),
            ("hold_ms", "0"),
            ("ends", "daemon"),
        ],
        files: &[("caller.ulaw", &keys)],
        ..sipp::Sipp::new("uac_media.xml", target)
    }
    .run_ok()
    .await;
    uas.wait().await.unwrap();
    let log = std::fs::read_to_string(out.path().join("uas.jsonl")).unwrap();
    println!("{log}");
    let rfc: Vec<&str> = log.lines().filter(|l| l.contains("\"call_end\"")).collect();
    assert!(
        rfc.iter().any(|l| l.contains("\"digits\": \"12#\"")),
        "{log}"
    );
    // The in-band call's recording through our own detector.
    let mut found = Vec::new();
    for entry in std::fs::read_dir(out.path()).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "ulaw")
            && entry.file_name() != "welcome.ulaw"
        {
            let mut pcm = Vec::new();
            G711Codec::Pcmu.decode_into(&std::fs::read(entry.path()).unwrap(), &mut pcm);
            let digits: String = InbandDetector::default()
                .on_audio(&pcm, Duration::ZERO)
                .iter()
                .map(|d| d.digit)
                .collect();
            found.push(digits);
        }
    }
    println!("{found:?}");
    assert!(found.contains(&"5*0".to_string()), "{found:?}");
}

#[tokio::test]
async fn baresip_hears_the_prompt_from_tinyuas() {
    let out = tempfile::tempdir().unwrap();
    let port = sipp::free_udp_port(1);
    let mut uas = tinyuas(port, 1, out.path()).await;
    let mut phone =
        baresip::Baresip::start(&audio::tone(440.0, 2000.0, Duration::from_secs(30))).await;
    let report = phone
        .call(
            &format!("sip:4008@127.0.0.1:{port}"),
            "1*9#",
            Duration::from_secs(3),
            Duration::from_secs(7),
        )
        .await;
    println!("{report:?}");
    let heard = phone.quit().await;
    uas.wait().await.unwrap();
    println!(
        "{}",
        std::fs::read_to_string(out.path().join("uas.jsonl")).unwrap()
    );
    let t = std::time::Instant::now();
    let found = audio::find_prompt(&heard, &welcome());
    println!(
        "heard {} s at {:.1} dBFS: {found:?} in {:?}",
        heard.len() / 8000,
        audio::level_dbfs(&heard),
        t.elapsed()
    );
    assert!(found.score > 0.9);
}
