//! `leakscan`: proves that server-side storage holds nothing it must not.
//!
//! The end-to-end privacy test uploads files, stops the worker, then runs this tool
//! over everything the local R2 bucket and Durable Object storage wrote to disk. It
//! reports any 32-byte window of a plaintext file, and any of a list of short secrets
//! (file names, keys in their textual forms), found anywhere in those files.
//!
//! Usage:
//! `leakscan [--plaintext FILE]... [--secret TEXT]... [--secret-hex HEX]... DIR_OR_FILE...`
//!
//! Prints a JSON report; exits 0 when nothing leaked, 1 when something did, 2 on bad
//! usage or an unreadable input (a scan that could not look is never a pass).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod scan;

use scan::{Finding, Scanner};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(report) => {
            println!("{}", report.to_json());
            if report.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            eprintln!("leakscan: {message}");
            ExitCode::from(2)
        }
    }
}

/// What one run found, over how much data.
struct Report {
    files: usize,
    bytes: u64,
    /// Files listed that were gone when read: a live store removes its SQLite `-shm`
    /// and `-wal` files when it checkpoints, and what they held is then in the
    /// database file (scanned) or discarded. Counted, so a skip is never silent.
    vanished: usize,
    findings: Vec<(PathBuf, Finding)>,
}

impl Report {
    /// Hand-written JSON: the tool has no dependencies, and the shape is tiny.
    fn to_json(&self) -> String {
        let mut out = format!(
            "{{\"filesScanned\":{},\"bytesScanned\":{},\"filesVanished\":{},\"leaks\":[",
            self.files, self.bytes, self.vanished
        );
        for (i, (path, finding)) in self.findings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"file\":{},\"offset\":{},\"what\":{}}}",
                json_string(&path.display().to_string()),
                finding.offset,
                json_string(&finding.what)
            );
        }
        out.push_str("]}");
        out
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn run(args: Vec<String>) -> Result<Report, String> {
    let mut plaintexts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--plaintext" => {
                let path = value("--plaintext")?;
                let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
                plaintexts.push((path, bytes));
            }
            "--secret" => {
                let text = value("--secret")?;
                secrets.push((format!("secret {text:?}"), text.into_bytes()));
            }
            "--secret-hex" => {
                let hex = value("--secret-hex")?;
                let bytes = decode_hex(&hex).ok_or_else(|| format!("not hex: {hex}"))?;
                secrets.push((format!("secret bytes {hex}"), bytes));
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            path => roots.push(PathBuf::from(path)),
        }
    }
    if roots.is_empty() {
        return Err("name at least one directory or file to scan".into());
    }
    let scanner = Scanner::new(&plaintexts, &secrets)?;
    let mut files = Vec::new();
    for root in &roots {
        collect_files(root, &mut files)?;
    }
    let mut report = Report {
        files: 0,
        bytes: 0,
        vanished: 0,
        findings: Vec::new(),
    };
    for file in files {
        let hay = match std::fs::read(&file) {
            Ok(hay) => hay,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.vanished += 1;
                continue;
            }
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        report.files += 1;
        report.bytes += hay.len() as u64;
        for finding in scanner.scan(&hay) {
            report.findings.push((file.clone(), finding));
        }
    }
    Ok(report)
}

/// Every regular file below `path` (or `path` itself); symbolic links are refused so
/// a scan cannot wander outside the storage directory or loop.
fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
    } else if meta.is_dir() {
        let entries =
            std::fs::read_dir(path).map_err(|e| format!("cannot list {}: {e}", path.display()))?;
        let mut children: Vec<PathBuf> = Vec::new();
        for entry in entries {
            children.push(entry.map_err(|e| e.to_string())?.path());
        }
        children.sort();
        for child in children {
            collect_files(&child, out)?;
        }
    } else {
        return Err(format!(
            "{} is neither a file nor a directory",
            path.display()
        ));
    }
    Ok(())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digits: HashMap<u8, u8> = (0u8..16)
        .map(|v| (b"0123456789abcdef"[v as usize], v))
        .chain((10u8..16).map(|v| (b"ABCDEF"[(v - 10) as usize], v)))
        .collect();
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some(digits.get(&pair[0])? * 16 + digits.get(&pair[1])?))
        .collect()
}
