//! PEM text, read the way OpenSSL reads it: `-----BEGIN <label>-----` blocks, each with optional
//! RFC 1421 headers (`Proc-Type`, `DEK-Info` of traditional encrypted keys) and a base64 body.
//! Also the OpenSSL "traditional" PEM encryption (`EVP_BytesToKey` with MD5) of PKCS#1 and SEC1
//! keys, and the one way totofs writes PEM (64-character lines, `\n`, trailing newline), which
//! is also the way Python `cryptography` writes it.

use crate::error::{Error, Result};
use base64::Engine as _;

/// One PEM block.
pub struct Block {
    pub label: String,
    pub headers: Vec<(String, String)>,
    pub der: Vec<u8>,
}

impl Block {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Traditional OpenSSL encryption: `Proc-Type: 4,ENCRYPTED` with a `DEK-Info` header.
    pub fn is_encrypted(&self) -> bool {
        self.header("Proc-Type").is_some_and(|v| v.to_ascii_uppercase().contains("ENCRYPTED"))
    }

    /// Decrypt a traditional encrypted block (`DEK-Info: <cipher>,<hex iv>`).
    pub fn decrypt(&self, password: &[u8]) -> Result<Vec<u8>> {
        let info = self.header("DEK-Info").ok_or_else(|| Error::format("encrypted PEM has no DEK-Info header"))?;
        let (cipher, iv_hex) =
            info.split_once(',').ok_or_else(|| Error::format(format!("malformed DEK-Info header '{info}'")))?;
        let iv = hex::decode(iv_hex.trim()).map_err(|_| Error::format(format!("malformed DEK-Info IV '{iv_hex}'")))?;
        let cipher = cipher.trim().to_ascii_uppercase();
        let (key_len, block_len) = match cipher.as_str() {
            "AES-128-CBC" => (16, 16),
            "AES-192-CBC" => (24, 16),
            "AES-256-CBC" => (32, 16),
            "DES-CBC" => (8, 8),
            "DES-EDE3-CBC" => (24, 8),
            other => return Err(Error::format(format!("unsupported PEM encryption '{other}'"))),
        };
        if iv.len() != block_len {
            return Err(Error::format(format!("DEK-Info IV has {} bytes, expected {block_len}", iv.len())));
        }
        let key = bytes_to_key(password, iv.get(..8).unwrap_or(&iv), key_len);
        super::pbe::cbc_decrypt(&cipher, &key, &iv, &self.der)
    }
}

/// OpenSSL `EVP_BytesToKey` with MD5 and one iteration (what traditional PEM encryption uses).
fn bytes_to_key(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    use md5::{Digest, Md5};
    let mut out = Vec::with_capacity(len + 16);
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < len {
        let mut h = Md5::new();
        h.update(&prev);
        h.update(password);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

/// Parse every PEM block in `text`. Text outside blocks is ignored (as OpenSSL does); a block
/// that starts but is malformed is an error.
pub fn parse(text: &str) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else { continue };
        let end = format!("-----END {label}-----");
        let mut headers = Vec::new();
        let mut body = String::new();
        let mut in_headers = true;
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if line.starts_with("-----") {
                return Err(Error::format(format!("PEM block '{label}' ends with '{line}'")));
            }
            if in_headers {
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                    continue;
                }
                in_headers = false;
                if line.is_empty() {
                    continue;
                }
            }
            body.push_str(line);
        }
        if !closed {
            return Err(Error::format(format!("PEM block '{label}' has no END line (truncated file?)")));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| Error::format(format!("PEM block '{label}' is not valid base64: {e}")))?;
        blocks.push(Block { label: label.to_string(), headers, der });
    }
    Ok(blocks)
}

/// PEM-encode `der` like Python `cryptography` does: 64-character base64 lines, `\n` line
/// endings, trailing newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_length() {
        let der: Vec<u8> = (0..=255u8).collect();
        let text = encode("PUBLIC KEY", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert!(text.ends_with("-----END PUBLIC KEY-----\n"));
        let blocks = parse(&text).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].der, der);
    }

    #[test]
    fn crlf_headers_and_surrounding_text() {
        let text = "junk\r\n-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\r\n\r\nAAEC\r\n-----END RSA PRIVATE KEY-----\r\n";
        let b = parse(text).unwrap();
        assert_eq!(b[0].label, "RSA PRIVATE KEY");
        assert!(b[0].is_encrypted());
        assert_eq!(b[0].der, vec![0, 1, 2]);
    }

    #[test]
    fn truncated_block_is_an_error() {
        assert!(parse("-----BEGIN PUBLIC KEY-----\nAAEC\n").is_err());
        assert!(parse("-----BEGIN PUBLIC KEY-----\nA!EC\n-----END PUBLIC KEY-----\n").is_err());
    }

    #[test]
    fn bytes_to_key_matches_openssl() {
        // key || iv from `openssl enc -aes-256-cbc -P -md md5 -S 0102030405060708 -pass pass:hunter2`
        let k = bytes_to_key(b"hunter2", &[1, 2, 3, 4, 5, 6, 7, 8], 48);
        assert_eq!(
            hex::encode_upper(k),
            "DD076B4BCD49C33676D8185C3DD67E935D3B7324FF7D8E1074D9734059F0971E\
             FEB9D83342D7AF5BEAE1FCD7AA9415A6"
        );
    }
}
