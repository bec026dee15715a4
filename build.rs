//! Builds `src/bin/airlock-forward.rs` a second time, linked statically (glibc's `libc.a`), so
//! airlock can embed it and bind it into any image, including one with no libc at all.

use std::path::PathBuf;
use std::process::{exit, Command};

const SOURCE: &str = "src/bin/airlock-forward.rs";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    let (Some(out_dir), Ok(target)) = (std::env::var_os("OUT_DIR"), std::env::var("TARGET")) else {
        eprintln!("build.rs: OUT_DIR and TARGET must be set by cargo");
        exit(1);
    };
    let out = PathBuf::from(out_dir).join("airlock-forward");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            "airlock_forward",
        ])
        .args(["-C", "opt-level=2", "-C", "target-feature=+crt-static"])
        .args([
            "-C",
            "strip=symbols",
            "-C",
            "panic=abort",
            "--target",
            &target,
        ])
        .arg("-o")
        .arg(&out)
        .arg(SOURCE)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("build.rs: static build of {SOURCE} failed ({s}); is libc6-dev installed?");
            exit(1);
        }
        Err(e) => {
            eprintln!("build.rs: cannot run rustc: {e}");
            exit(1);
        }
    }
}
