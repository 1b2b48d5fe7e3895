//! Who may connect: renet's netcode in secure mode.
//!
//! The server and the login step share a 32-byte private key, read from a
//! file (`--key-file`: 32 raw bytes or 64 hex digits) or from the environment
//! (`DELTA_NETCODE_KEY`, 64 hex digits); clients never see it. The login step
//! (here `--issue-token`; in a game, the service that checks a password) hands
//! each user a connect token naming the user's id and the server's address,
//! sealed with the key and valid for a few minutes. The server admits only
//! clients holding a valid token, and knows each one by the token's id: the
//! `EditPolicy` sees it as `EditRequest::network_id`.
//!
//! `--unsecure` skips all of this: a client picks its own id and anyone who
//! can reach the port may connect. It is for trying things on 127.0.0.1 only.

use bevy_replicon_renet::netcode::{ConnectToken, NETCODE_KEY_BYTES, generate_random_bytes};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The environment variable holding the private key (64 hex digits).
pub const KEY_ENV: &str = "DELTA_NETCODE_KEY";

/// The netcode protocol id: a token works only for servers of this protocol.
pub const PROTOCOL_ID: u64 = 0x0de1_7a0f;

/// How long an issued token may be used to connect.
const TOKEN_SECONDS: u64 = 300;

/// A private key.
pub type Key = [u8; NETCODE_KEY_BYTES];

/// A fresh random key (the loopback run's server and login step share it in
/// memory).
pub fn random_key() -> Key {
    generate_random_bytes()
}

/// The key from `file` (32 raw bytes, or 64 hex digits), else from
/// `DELTA_NETCODE_KEY`.
pub fn load_key(file: Option<&Path>) -> Result<Key, String> {
    let text = match file {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
            if let Ok(key) = Key::try_from(bytes.as_slice()) {
                return Ok(key);
            }
            String::from_utf8(bytes).map_err(|_| format!("{}: not 32 bytes nor 64 hex digits", path.display()))?
        }
        None => std::env::var(KEY_ENV)
            .map_err(|_| format!("no key: pass --key-file PATH or set {KEY_ENV} (64 hex digits), or --unsecure"))?,
    };
    parse_hex(text.trim())
}

/// 64 hex digits as a key.
fn parse_hex(text: &str) -> Result<Key, String> {
    let digits = text.as_bytes();
    if digits.len() != 2 * NETCODE_KEY_BYTES {
        return Err(format!("a key is {} hex digits, not {}", 2 * NETCODE_KEY_BYTES, digits.len()));
    }
    let mut key = [0u8; NETCODE_KEY_BYTES];
    for (i, pair) in digits.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| "a key is hex digits".to_string())?;
        key[i] = u8::from_str_radix(pair, 16).map_err(|_| format!("{pair:?} is not a hex byte"))?;
    }
    Ok(key)
}

fn now() -> Duration {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

/// The login step: a token for user `user` to connect to `server`.
pub fn issue_token(key: &Key, user: u64, server: SocketAddr) -> Result<ConnectToken, String> {
    // The client is dropped after 15 s of silence.
    ConnectToken::generate(now(), PROTOCOL_ID, TOKEN_SECONDS, user, 15, vec![server], None, key)
        .map_err(|e| format!("cannot issue a token: {e}"))
}

/// Writes a token to `path` (what a login service would send its user).
pub fn write_token(token: &ConnectToken, path: &Path) -> Result<(), String> {
    let mut bytes = Vec::new();
    token.write(&mut bytes).map_err(|e| format!("cannot encode the token: {e}"))?;
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads a token written by [`write_token`].
pub fn read_token(path: &Path) -> Result<ConnectToken, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the token {}: {e}", path.display()))?;
    ConnectToken::read(&mut bytes.as_slice()).map_err(|e| format!("{} is not a connect token: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_keys_parse() {
        let key = super::parse_hex(&"0a".repeat(32)).unwrap();
        assert_eq!(key, [10u8; 32]);
        assert!(super::parse_hex("0a").is_err());
        assert!(super::parse_hex(&"zz".repeat(32)).is_err());
    }
}
