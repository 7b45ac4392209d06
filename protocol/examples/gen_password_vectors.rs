//! Writes the password link test vectors of docs/FORMAT.md ("Password links") to
//! `tests/vectors/password/links.json`.
//!
//! ```text
//! cargo run -p sealdrop-protocol --example gen_password_vectors            # (re)write
//! cargo run -p sealdrop-protocol --example gen_password_vectors -- --check  # compare only
//! ```
//!
//! Deterministic: every fixed input is `SHA-256("sealdrop password test vector: " ||
//! label)`, cut to length. Failure cases are real manipulations of the first success
//! case. The real parameters (m = 64 MiB, t = 3, p = 1) are used, so there are few cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sealdrop_protocol::format::{
    ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB, FileKey, PasswordKeys,
};
use sealdrop_protocol::ids::ShareToken;
use sealdrop_protocol::share::{Verifier, verifier_hash};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn fixed<const N: usize>(label: &str) -> [u8; N] {
    let digest = Sha256::digest(format!("sealdrop password test vector: {label}"));
    digest[..N].try_into().unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn token(label: &str) -> ShareToken {
    // A token's text is 24 bytes: the 16 random bytes and an 8-byte MAC (not checked
    // by a client, so any bytes do here).
    let bytes: [u8; 24] = fixed(label);
    ShareToken::parse(&URL_SAFE_NO_PAD.encode(bytes)).unwrap()
}

fn success(name: &str, comment: &str, password: &str, typed: Option<&str>) -> Value {
    let token = token(name);
    let salt = fixed(&format!("{name} salt"));
    let key = FileKey::from_bytes(fixed(&format!("{name} file key")));
    let keys = PasswordKeys::derive(password.as_bytes(), salt).unwrap();
    let wrapped = keys.wrap(&token, &key);
    assert_eq!(keys.unwrap(&token, &wrapped).unwrap(), key);
    let verifier = Verifier::parse(&URL_SAFE_NO_PAD.encode(keys.verifier())).unwrap();
    let mut case = json!({
        "name": name,
        "comment": comment,
        "expect": "success",
        "password": password,
        "token": token.as_str(),
        "fragment": wrapped.encode(),
        "fileKey": hex(key.as_bytes()),
        "salt": hex(&salt),
        "stretched": hex(keys.stretched()),
        "verifier": URL_SAFE_NO_PAD.encode(keys.verifier()),
        "wrapKey": hex(keys.wrap_key(&token).as_ref()),
        "storedHash": hex(&verifier_hash(&token.random_part(), &verifier)),
    });
    if let Some(typed) = typed {
        case["typed"] = json!(typed);
    }
    case
}

fn failure(
    name: &str,
    comment: &str,
    base: &Value,
    change: &[(&str, Value)],
    error: &str,
) -> Value {
    let mut case = json!({
        "name": name,
        "comment": comment,
        "expect": "failure",
        "error": error,
        "password": base["password"],
        "token": base["token"],
        "fragment": base["fragment"],
    });
    for (field, value) in change {
        case[*field] = value.clone();
    }
    case
}

fn vectors() -> Value {
    let ascii = success(
        "ascii",
        "a printable ASCII password",
        "correct horse battery staple",
        None,
    );
    let unicode = success(
        "unicode",
        "a password outside ASCII: its NFC form, encoded as UTF-8 (typed: as entered, decomposed)",
        "p\u{e4}ssw\u{f6}rd \u{2713} \u{5bc6}\u{7801}",
        Some("pa\u{308}sswo\u{308}rd \u{2713} \u{5bc6}\u{7801}"),
    );
    let fragment = ascii["fragment"].as_str().unwrap().to_owned();
    let (head, sealed) = fragment.rsplit_once('.').unwrap();
    let mut tampered = URL_SAFE_NO_PAD.decode(sealed).unwrap();
    tampered[0] ^= 1;
    let failures = vec![
        failure(
            "wrong_password",
            "the right link, another password",
            &ascii,
            &[("password", json!("correct horse battery stapler"))],
            "wrong_password",
        ),
        failure(
            "token_swapped",
            "the link's fragment put on another share's token: the AAD binds the token",
            &ascii,
            &[("token", unicode["token"].clone())],
            "wrong_password",
        ),
        failure(
            "tampered_wrapped_key",
            "one bit of the wrapped key flipped",
            &ascii,
            &[(
                "fragment",
                json!(format!("{head}.{}", URL_SAFE_NO_PAD.encode(&tampered))),
            )],
            "wrong_password",
        ),
        failure(
            "truncated_fragment",
            "the fragment cut by one character",
            &ascii,
            &[("fragment", json!(&fragment[..fragment.len() - 1]))],
            "invalid_link",
        ),
    ];
    let mut cases = vec![ascii, unicode];
    cases.extend(failures);
    json!({
        "comment": "Password links (docs/FORMAT.md, Password links). Generated by protocol/examples/gen_password_vectors.rs; hex is lower case, verifier and fragment base64url.",
        "argon2id": {
            "memoryKiB": ARGON2_MEMORY_KIB, "iterations": ARGON2_ITERATIONS,
            "lanes": ARGON2_LANES, "version": 19, "outputLength": 32,
        },
        "cases": cases,
    })
}

fn main() -> ExitCode {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/password/links.json");
    let text = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::args().any(|a| a == "--check") {
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != text {
            eprintln!("{} is out of date", path.display());
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    std::fs::write(&path, text).unwrap();
    ExitCode::SUCCESS
}
