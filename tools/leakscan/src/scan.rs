//! The search itself: every 32-byte window of every plaintext, and every secret,
//! against every offset of a haystack, in one pass.
//!
//! Indexing every 32-byte window of a 64 MiB plaintext would take 64 million entries.
//! Instead we index only the 16-byte blocks at offsets that are multiples of 16: any
//! 32-byte stretch shared by a plaintext and the haystack fully contains one of those
//! aligned blocks, so looking every haystack offset up in that index finds every such
//! stretch, and a hit is then extended both ways to check it really spans 32 bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The shortest run of plaintext bytes that counts as a leak.
pub const WINDOW: usize = 32;
const BLOCK: usize = WINDOW / 2;

/// One thing found where it must not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Offset in the haystack where the leaked bytes start.
    pub offset: usize,
    /// What leaked: the plaintext and its offset, or the secret.
    pub what: String,
}

/// Keys are already uniformly random (plaintext blocks, or prefixes we fold), so the
/// hash can be the key itself; SipHash would triple the scan time for nothing.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<PassThrough>>;

/// The needles, indexed once, scanned against any number of haystacks.
pub struct Scanner<'a> {
    plaintexts: &'a [(String, Vec<u8>)],
    /// Aligned 16-byte block → (plaintext index, offset in it).
    blocks: FastMap<u128, Vec<(usize, usize)>>,
    secrets: &'a [(String, Vec<u8>)],
    /// First four bytes of a secret → indexes of the secrets starting so.
    secret_prefixes: FastMap<u32, Vec<usize>>,
}

fn block_at(bytes: &[u8], at: usize) -> Option<u128> {
    let slice = bytes.get(at..at + BLOCK)?;
    let mut buf = [0u8; BLOCK];
    buf.copy_from_slice(slice);
    Some(u128::from_le_bytes(buf))
}

fn prefix_at(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at + 4)?;
    let mut buf = [0u8; 4];
    buf.copy_from_slice(slice);
    Some(u32::from_le_bytes(buf))
}

impl<'a> Scanner<'a> {
    /// Indexes the needles. Secrets shorter than 4 bytes are refused: they would match
    /// by chance everywhere and prove nothing.
    pub fn new(
        plaintexts: &'a [(String, Vec<u8>)],
        secrets: &'a [(String, Vec<u8>)],
    ) -> Result<Self, String> {
        let mut blocks: FastMap<u128, Vec<(usize, usize)>> = FastMap::default();
        for (index, (_, bytes)) in plaintexts.iter().enumerate() {
            let mut at = 0;
            while let Some(block) = block_at(bytes, at) {
                blocks.entry(block).or_default().push((index, at));
                at += BLOCK;
            }
        }
        let mut secret_prefixes: FastMap<u32, Vec<usize>> = FastMap::default();
        for (index, (label, bytes)) in secrets.iter().enumerate() {
            let prefix =
                prefix_at(bytes, 0).ok_or_else(|| format!("{label} is shorter than 4 bytes"))?;
            secret_prefixes.entry(prefix).or_default().push(index);
        }
        Ok(Scanner {
            plaintexts,
            blocks,
            secrets,
            secret_prefixes,
        })
    }

    /// Everything found in `hay`, each leaked plaintext stretch reported once.
    pub fn scan(&self, hay: &[u8]) -> Vec<Finding> {
        let mut findings = Vec::new();
        // A leaked stretch is found again at each of its aligned blocks; skip offsets
        // already inside a reported stretch.
        let mut covered_until = 0usize;
        for at in 0..hay.len() {
            if let Some(prefix) = prefix_at(hay, at)
                && let Some(candidates) = self.secret_prefixes.get(&prefix)
            {
                for &i in candidates {
                    let (label, secret) = &self.secrets[i];
                    if hay[at..].starts_with(secret) {
                        findings.push(Finding {
                            offset: at,
                            what: label.clone(),
                        });
                    }
                }
            }
            if at < covered_until {
                continue;
            }
            let Some(block) = block_at(hay, at) else {
                continue;
            };
            let Some(places) = self.blocks.get(&block) else {
                continue;
            };
            for &(index, offset) in places {
                let (label, plain) = &self.plaintexts[index];
                let back = common_suffix(&hay[..at], &plain[..offset]);
                let forward = common_prefix(&hay[at..], &plain[offset..]);
                if back + forward >= WINDOW {
                    findings.push(Finding {
                        offset: at - back,
                        what: format!(
                            "{} bytes of plaintext {label} from offset {}",
                            back + forward,
                            offset - back
                        ),
                    });
                    covered_until = at + forward;
                    break;
                }
            }
        }
        findings
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Deterministic bytes that never repeat a 16-byte block (xorshift64*).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    fn plaintexts() -> Vec<(String, Vec<u8>)> {
        vec![("p".to_string(), noise(7, 4096))]
    }

    /// `len` bytes of plaintext from `start`, between `pad` bytes on each side that
    /// differ from the plaintext's own neighbours, so the copy cannot grow by chance.
    fn embed(plain: &[u8], start: usize, len: usize, pad: usize) -> Vec<u8> {
        let before = start.checked_sub(1).map_or(0, |i| plain[i]);
        let after = plain.get(start + len).copied().unwrap_or(0);
        let mut hay = vec![!before; pad];
        hay.extend_from_slice(&plain[start..start + len]);
        hay.extend(std::iter::repeat_n(!after, 40));
        hay
    }

    #[test]
    fn finds_a_32_byte_window_at_every_alignment() {
        let plains = plaintexts();
        let scanner = Scanner::new(&plains, &[]).unwrap();
        for start in 0..48 {
            for pad in [0usize, 1, 5, 15, 16, 17] {
                let found = scanner.scan(&embed(&plains[0].1, start, WINDOW, pad));
                assert_eq!(found.len(), 1, "start {start} pad {pad}: {found:?}");
                assert_eq!(found[0].offset, pad, "start {start} pad {pad}");
            }
        }
    }

    #[test]
    fn ignores_31_bytes() {
        let plains = plaintexts();
        let scanner = Scanner::new(&plains, &[]).unwrap();
        for start in 0..40 {
            for pad in [0usize, 3, 16] {
                let hay = embed(&plains[0].1, start, WINDOW - 1, pad);
                assert!(scanner.scan(&hay).is_empty(), "start {start} pad {pad}");
            }
        }
    }

    #[test]
    fn reports_a_long_leak_once() {
        let plains = plaintexts();
        let scanner = Scanner::new(&plains, &[]).unwrap();
        let mut hay = noise(1, 10);
        hay.extend_from_slice(&plains[0].1[100..1100]);
        let found = scanner.scan(&hay);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].what.starts_with("1000 bytes"), "{found:?}");
    }

    #[test]
    fn finds_secrets_anywhere_and_refuses_tiny_ones() {
        let secrets = vec![("name".to_string(), b"holiday.mov".to_vec())];
        let scanner = Scanner::new(&[], &secrets).unwrap();
        let mut hay = noise(3, 50);
        hay.extend_from_slice(b"holiday.mov");
        assert_eq!(scanner.scan(&hay)[0].offset, 50);
        assert!(scanner.scan(b"holiday.mo").is_empty());
        let tiny = vec![("x".to_string(), b"abc".to_vec())];
        assert!(Scanner::new(&[], &tiny).is_err());
    }

    #[test]
    fn clean_noise_is_clean() {
        let plains = plaintexts();
        let secrets = vec![("k".to_string(), noise(11, 32))];
        let scanner = Scanner::new(&plains, &secrets).unwrap();
        assert!(scanner.scan(&noise(12, 1 << 16)).is_empty());
    }
}
