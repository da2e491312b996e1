//! `hotlinectl`: the administrators' and agents' command line.

fn main() {
    eprintln!("hotlinectl: not wired yet");
    std::process::exit(1);
}
