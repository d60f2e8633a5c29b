//! The native `quantlab` command; all logic lives in `quantlab::cli`.
fn main() -> std::process::ExitCode {
    quantlab::cli::main()
}
