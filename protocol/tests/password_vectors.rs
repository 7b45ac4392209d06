//! Runs the password link vectors of `tests/vectors/password/links.json` (docs/FORMAT.md,
//! Password links) against this crate: every intermediate of a success case, and the
//! exact error of a failure case. `tests/password-vectors.test.mjs` runs the same file
//! through an independent JavaScript implementation.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sealdrop_protocol::format::{
    ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB, FormatError, LinkSecret, PasswordKeys,
};
use sealdrop_protocol::ids::ShareToken;
use sealdrop_protocol::share::{Verifier, verifier_hash};
use serde_json::Value;

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/password/links.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no {name}", case["name"]))
}

/// Parses the fragment, stretches the password and opens the key: the file key's hex,
/// or the first error's code.
fn open(case: &Value) -> Result<(String, PasswordKeys), &'static str> {
    let token = ShareToken::parse(field(case, "token")).unwrap();
    let LinkSecret::Password(wrapped) =
        LinkSecret::parse(field(case, "fragment")).map_err(|e| e.code())?
    else {
        return Err("not a p1 link");
    };
    let keys = PasswordKeys::derive(field(case, "password").as_bytes(), wrapped.salt)
        .map_err(|e| e.code())?;
    let key = keys.unwrap(&token, &wrapped).map_err(|e| e.code())?;
    Ok((hex(key.as_bytes()), keys))
}

#[test]
fn parameters_are_the_documented_ones() {
    let v = vectors();
    let p = &v["argon2id"];
    assert_eq!(p["memoryKiB"], ARGON2_MEMORY_KIB);
    assert_eq!(p["iterations"], ARGON2_ITERATIONS);
    assert_eq!(p["lanes"], ARGON2_LANES);
    assert_eq!(
        (ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES),
        (65_536, 3, 1)
    );
}

#[test]
fn every_case_passes() {
    let v = vectors();
    let cases = v["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| field(c, "name")).collect();
    assert_eq!(
        names,
        [
            "ascii",
            "unicode",
            "wrong_password",
            "token_swapped",
            "tampered_wrapped_key",
            "truncated_fragment"
        ]
    );
    for case in cases {
        let name = field(case, "name");
        match field(case, "expect") {
            "success" => {
                let (key, keys) = open(case).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(key, field(case, "fileKey"), "{name}");
                let token = ShareToken::parse(field(case, "token")).unwrap();
                assert_eq!(hex(keys.stretched()), field(case, "stretched"), "{name}");
                assert_eq!(
                    URL_SAFE_NO_PAD.encode(keys.verifier()),
                    field(case, "verifier"),
                    "{name}"
                );
                assert_eq!(hex(keys.wrap_key(&token).as_ref()), field(case, "wrapKey"));
                let LinkSecret::Password(wrapped) =
                    LinkSecret::parse(field(case, "fragment")).unwrap()
                else {
                    panic!("{name}: not p1")
                };
                assert_eq!(hex(&wrapped.salt), field(case, "salt"), "{name}");
                // Wrapping again gives the same fragment: one key, salt and token, one link.
                let key = keys.unwrap(&token, &wrapped).unwrap();
                let again = keys.wrap(&token, &key);
                assert_eq!(again.encode(), field(case, "fragment"), "{name}");
                let verifier = Verifier::parse(field(case, "verifier")).unwrap();
                assert_eq!(
                    hex(&verifier_hash(&token.random_part(), &verifier)),
                    field(case, "storedHash"),
                    "{name}"
                );
            }
            "failure" => {
                let err = open(case).err().unwrap_or_else(|| panic!("{name} opened"));
                assert_eq!(err, field(case, "error"), "{name}");
            }
            other => panic!("{name}: expect {other}"),
        }
    }
}

#[test]
fn the_runner_fails_an_altered_success() {
    let v = vectors();
    let mut case = v["cases"][0].clone();
    case["password"] = Value::from(format!("{} ", field(&case, "password")));
    assert_eq!(open(&case).err(), Some(FormatError::WrongPassword.code()));
}
