//! X-Hub-Signature-256: HMAC-SHA256 of the raw body, checked in constant time against each
//! configured webhook secret (several during a rotation).

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// True when `header` (`sha256=<hex>`) is the signature of `body` under any of `secrets`.
pub fn verify(secrets: &[SecretString], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    // Every secret is tried (no early exit), so timing does not tell which one matched.
    secrets.iter().fold(false, |ok, secret| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
        mac.update(body);
        mac.verify_slice(&sig).is_ok() | ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(s: &[&str]) -> Vec<SecretString> {
        s.iter().map(|s| SecretString::from(s.to_string())).collect()
    }

    #[test]
    fn githubs_documented_test_vector() {
        // docs.github.com, "Validating webhook deliveries".
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify(
            &secrets(&["It's a Secret to Everybody"]),
            b"Hello, World!",
            header
        ));
        assert!(!verify(
            &secrets(&["It's a Secret to Everybody"]),
            b"Hello, World?",
            header
        ));
        assert!(!verify(&secrets(&["another secret"]), b"Hello, World!", header));
    }

    #[test]
    fn any_secret_of_a_rotation_verifies_and_bad_headers_fail() {
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify(
            &secrets(&["new secret", "It's a Secret to Everybody"]),
            b"Hello, World!",
            header
        ));
        for bad in ["", "sha1=757107ea", "sha256=zz", "sha256=757107"] {
            assert!(
                !verify(&secrets(&["It's a Secret to Everybody"]), b"Hello, World!", bad),
                "{bad}"
            );
        }
        assert!(
            !verify(&[], b"Hello, World!", header),
            "no secret configured: nothing verifies"
        );
    }
}
