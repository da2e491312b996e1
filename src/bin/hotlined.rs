//! `hotlined`: the hotline daemon.

fn main() {
    eprintln!("hotlined: not wired yet");
    std::process::exit(1);
}
