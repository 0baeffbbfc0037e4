//! How the apiserver makes sure an address is really its cluster's kubelet before it sends the
//! kubelet bearer token there.
//!
//! A Node's status names the address of its kubelet, and any client that can write a Node can
//! name any address. Upstream's apiserver checks the kubelet's serving certificate; here the
//! apiserver challenges the address first: it sends a fresh random challenge, and only an
//! endpoint that holds the token can answer with HMAC-SHA256(token, node name, the kubelet's own
//! address and the challenge). The token itself only follows a correct answer. Binding the
//! node name keeps one node's kubelet from answering for another's; binding the address keeps
//! an impostor from relaying the challenge to a real kubelet elsewhere and passing its answer
//! back (the real kubelet signs its own address, not the impostor's).

use std::net::SocketAddr;

use ring::hmac;

/// The kubelet path that answers a challenge (`?challenge=<hex>`).
pub const PATH: &str = "/kubespec/vouch";

fn message(node: &str, address: SocketAddr, challenge: &str) -> Vec<u8> {
    format!("kubespec-kubelet-vouch\n{node}\n{address}\n{challenge}").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random challenge (32 bytes, hex).
pub fn challenge() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// The answer of `node`'s kubelet, serving at `address`, to `challenge`, with `token`.
pub fn answer(token: &str, node: &str, address: SocketAddr, challenge: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    hex(hmac::sign(&key, &message(node, address, challenge)).as_ref())
}

/// Whether `answer` proves that whoever answered holds `token` and is `node`'s kubelet serving
/// at `address` (the address the apiserver dialled), for `challenge` (constant time).
pub fn verify(token: &str, node: &str, address: SocketAddr, challenge: &str, answer: &str) -> bool {
    let Some(tag) = unhex(answer.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    hmac::verify(&key, &message(node, address, challenge), &tag).is_ok()
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
    fn only_the_token_holder_answers_for_its_own_node_and_address() {
        let here: SocketAddr = "127.0.0.1:10250".parse().unwrap();
        let elsewhere: SocketAddr = "127.0.0.9:10250".parse().unwrap();
        let c = challenge();
        assert_eq!(c.len(), 64);
        let good = answer("secret", "node-1", here, &c);
        assert!(verify("secret", "node-1", here, &c, &good));
        assert!(!verify("secret", "node-2", here, &c, &good));
        // Relayed: the real kubelet signed its own address, not the one the apiserver dialled.
        assert!(!verify("secret", "node-1", elsewhere, &c, &good));
        assert!(!verify("other", "node-1", here, &c, &good));
        assert!(!verify("secret", "node-1", here, &challenge(), &good));
        assert!(!verify("secret", "node-1", here, &c, "zz"));
        assert!(!verify("secret", "node-1", here, &c, "é"));
    }
}
