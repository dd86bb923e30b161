//! The `gatewatch` binary: hands the command line to [`gatewatch::cli`], which runs the
//! command and decides the exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let program = args
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .unwrap_or("gatewatch");
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    gatewatch::cli::main_with_args(program, &rest)
}
