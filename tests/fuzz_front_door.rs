//! A mutation fuzzer over what a client can send before and around login, on stable Rust: the
//! startup packet parser, the frame decoder with the readers and the prepared-statement
//! rewriter behind it, and the SCRAM server exchange. Seeds come from `fuzz/corpus/<target>/`
//! in the repo; each run mutates them (bit flips, byte sets, truncation, duplication,
//! insertion, splicing two seeds, boundary values in length fields) with a seeded generator
//! for a bounded time per target, and checks that nothing panics and that each decoder keeps
//! its promises. `FUZZ_SECONDS` (default 3) bounds each target; `FUZZ_SEED` replays a run
//! (every failure prints the seed and the input).

use bytes::BytesMut;
use std::path::Path;
use std::time::{Duration, Instant};
use switchyard::auth::{ScramExchange, ScramVerifier};
use switchyard::prepared::rewrite::Rewriter;
use switchyard::prepared::{ClientStatements, ExpectQueue, Registry, ServerStatements};
use switchyard::protocol::frame::{peek_header, Frames, HEADER_LEN};
use switchyard::protocol::{client_msgs, startup};

/// xorshift64*: small, fast, and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .flatten()
        .map(|e| std::fs::read(e.path()).expect("read seed"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// One mutation of `input` (another seed may be spliced in).
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    const BOUNDARY: [u32; 8] = [0, 3, 4, 5, 8, 0x7fff_ffff, 0xffff_ffff, 10_001];
    match rng.below(8) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] = rng.next() as u8;
        }
        2 => input.truncate(rng.below(input.len() + 1)),
        3 if !input.is_empty() => {
            let a = rng.below(input.len());
            let b = a + rng.below(input.len() - a).min(64);
            let chunk = input[a..b].to_vec();
            let at = rng.below(input.len() + 1);
            input.splice(at..at, chunk);
        }
        4 => {
            let at = rng.below(input.len() + 1);
            let n = rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
        5 => {
            let other = &seeds[rng.below(seeds.len())];
            let at = rng.below(input.len() + 1);
            input.truncate(at);
            input.extend_from_slice(&other[rng.below(other.len() + 1)..]);
        }
        6 if input.len() >= 4 => {
            let i = rng.below(input.len() - 3);
            let v = BOUNDARY[rng.below(BOUNDARY.len())];
            input[i..i + 4].copy_from_slice(&v.to_be_bytes());
        }
        _ => {
            let i = rng.below(input.len() + 1);
            input.insert(i, [0u8, b',', b'=', b'$', 0xff][rng.below(5)]);
        }
    }
}

/// Runs `check` on mutated seeds of `target` for the time budget; returns the inputs tried.
fn fuzz(target: &str, check: impl Fn(&[u8])) -> u64 {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let seeds = seeds(target);
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tried = 0u64;
    for s in &seeds {
        check(s);
    }
    while Instant::now() < deadline {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut rng, &mut input, &seeds);
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        if let Err(e) = outcome {
            panic!(
                "{target}: FUZZ_SEED={seed} after {tried} inputs, input {input:02x?}: {:?}",
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or(e.downcast_ref::<&str>().copied())
            );
        }
        tried += 1;
    }
    eprintln!("fuzz {target}: {tried} inputs in {seconds} s (FUZZ_SEED={seed})");
    tried
}

#[test]
fn startup_packets() {
    let tried = fuzz("startup", |input| {
        match startup::packet_len(input) {
            Ok(None) => assert!(input.len() < 4),
            Ok(Some(n)) => assert!((8..=startup::MAX_STARTUP_LEN).contains(&n)),
            Err(_) => {}
        }
        if let Ok(startup::StartupPacket::Startup { params }) = startup::decode(input) {
            assert!(params.len() <= startup::MAX_STARTUP_PARAMS);
            assert!(params.iter().all(|(k, _)| !k.is_empty()));
        }
    });
    assert!(tried > 0);
}

#[test]
fn client_frames_and_the_rewriter() {
    const MAX: usize = 1 << 20;
    let tried = fuzz("frames", |input| {
        let registry = Registry::new(100);
        let mut client = ClientStatements::default();
        let mut held = ServerStatements::new(10);
        let mut queue = ExpectQueue::default();
        let mut rw = Rewriter {
            registry: &registry,
            client: &mut client,
            held: &mut held,
            queue: &mut queue,
            map_names: true,
            heads: None,
        };
        let mut out = BytesMut::new();
        let mut frames = Frames::new(input, MAX);
        for f in frames.by_ref() {
            let Ok((h, frame)) = f else {
                break;
            };
            assert!(h.total_len >= HEADER_LEN && h.total_len <= MAX);
            assert_eq!(frame.len(), h.total_len);
            let _ = client_msgs::sql_of(h.tag, frame);
            let _ = client_msgs::bind_statement(frame);
            let _ = rw.frame(h.tag, frame, &mut out);
        }
        assert!(frames.consumed() <= input.len());
        if let Ok(Some(h)) = peek_header(input, MAX) {
            assert!(h.total_len >= HEADER_LEN);
        }
    });
    assert!(tried > 0);
}

#[test]
fn scram_server_exchange() {
    let verifier = ScramVerifier::generate("fuzz-password");
    let finals: Vec<Vec<u8>> = seeds("scram")
        .into_iter()
        .filter(|s| s.starts_with(b"c="))
        .collect();
    let tried = fuzz("scram", |input| {
        let Ok((exchange, server_first)) = ScramExchange::start(&verifier, input) else {
            return;
        };
        assert!(server_first.starts_with("r="));
        // The client-final template with the real nonce, so that mutations reach the proof.
        let nonce = server_first
            .split(',')
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .unwrap_or("");
        let template = finals.first().cloned().unwrap_or_default();
        let mut last = String::from_utf8_lossy(&template)
            .replace("{nonce}", nonce)
            .into_bytes();
        let mut rng = Rng(input.len() as u64 | 1);
        for _ in 0..rng.below(3) {
            mutate(&mut rng, &mut last, &finals);
        }
        // A random proof never proves the password.
        assert!(exchange.finish(&last).is_err());
    });
    assert!(tried > 0);
}
