//! The `quantlab` command line. PLACEHOLDER (being filled in).
pub fn main() -> std::process::ExitCode {
    eprintln!("quantlab: not implemented yet");
    std::process::ExitCode::FAILURE
}
