//! How the apiserver makes sure an address is really its cluster's kubelet before it sends the
//! kubelet bearer token there.
//!
//! A Node's status names the address of its kubelet, and any client that can write a Node can
//! name any address. Upstream's apiserver checks the kubelet's serving certificate; here the
//! apiserver challenges the address first: it sends a fresh random challenge, and only an
//! endpoint that holds the token can answer with HMAC-SHA256(token, node name and challenge).
//! The token itself only follows a correct answer. Binding the node name into the answer also
//! keeps one node's kubelet from answering for another's.

use ring::hmac;

/// The kubelet path that answers a challenge (`?node=<name>&challenge=<hex>`).
pub const PATH: &str = "/kubespec/vouch";

fn message(node: &str, challenge: &str) -> Vec<u8> {
    format!("kubespec-kubelet-vouch\n{node}\n{challenge}").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random challenge (32 bytes, hex).
pub fn challenge() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// The kubelet's answer to `challenge` for `node`, with `token`.
pub fn answer(token: &str, node: &str, challenge: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    hex(hmac::sign(&key, &message(node, challenge)).as_ref())
}

/// Whether `answer` proves knowledge of `token` for `node` and `challenge` (constant time).
pub fn verify(token: &str, node: &str, challenge: &str, answer: &str) -> bool {
    let Some(tag) = unhex(answer.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    hmac::verify(&key, &message(node, challenge), &tag).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_holder_answers_for_its_own_node() {
        let c = challenge();
        assert_eq!(c.len(), 64);
        let good = answer("secret", "node-1", &c);
        assert!(verify("secret", "node-1", &c, &good));
        assert!(!verify("secret", "node-2", &c, &good));
        assert!(!verify("other", "node-1", &c, &good));
        assert!(!verify("secret", "node-1", &challenge(), &good));
        assert!(!verify("secret", "node-1", &c, "zz"));
        assert!(!verify("secret", "node-1", &c, "é"));
    }
}
