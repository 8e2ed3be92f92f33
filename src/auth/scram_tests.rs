//! Tests of the SCRAM-SHA-256 server side (kept apart from `scram.rs`, which they test
//! through `super::*`).

use super::*;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

// Produced by PostgreSQL 15.18: CREATE ROLE x PASSWORD 'secret';
// SELECT rolpassword FROM pg_authid WHERE rolname = 'x'.
const PG15_SECRET: &str = "SCRAM-SHA-256$4096:/Z1k+4D1uvKok47isBFbHA==$bBKK4I/v6itS8K4VTVz+VXAYa3w95YGuaUvJladWsAw=:xzAvxdFrn/4cyJqzKAwidvBs92bb1il7gJ+DJMUWJK8=";

/// Drive a full exchange with postgres-protocol's client, which must
/// accept our server-final-message.
fn login(
    verifier: &ScramVerifier,
    password: &str,
    channel_binding: ChannelBinding,
) -> Result<ScramSuccess, AuthError> {
    let mut client = ScramSha256::new(password.as_bytes(), channel_binding);
    let (exchange, server_first) = ScramExchange::start(verifier, client.message())?;
    assert_eq!(exchange.server_first(), server_first);
    client
        .update(server_first.as_bytes())
        .expect("client accepts server-first-message");
    let success = exchange.finish(client.message())?;
    client
        .finish(success.server_final.as_bytes())
        .expect("client accepts server-final-message");
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(success.client_key)),
        verifier.stored_key
    );
    Ok(success)
}

/// A client-final-message for `server_first` built by postgres-protocol
/// after our start(), plus the exchange.
fn exchange_and_client_final(password: &str) -> (ScramExchange, String) {
    let verifier = ScramVerifier::from_password("pw", b"salt", 16);
    let mut client = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    let (exchange, server_first) = ScramExchange::start(&verifier, client.message()).unwrap();
    client.update(server_first.as_bytes()).unwrap();
    let client_final = String::from_utf8(client.message().to_vec()).unwrap();
    (exchange, client_final)
}

fn dup(ex: &ScramExchange) -> ScramExchange {
    ScramExchange {
        stored_key: ex.stored_key,
        server_key: ex.server_key,
        expected_cbind: ex.expected_cbind.clone(),
        nonce: ex.nonce.clone(),
        client_first_bare: ex.client_first_bare.clone(),
        server_first: ex.server_first.clone(),
    }
}

fn combined_nonce(server_first: &str) -> &str {
    server_first
        .strip_prefix("r=")
        .and_then(|s| s.split(',').next())
        .unwrap()
}

#[test]
fn right_password_authenticates_with_real_client() {
    let verifier = ScramVerifier::generate("correct horse");
    let success = login(&verifier, "correct horse", ChannelBinding::unsupported()).unwrap();
    assert!(success.server_final.starts_with("v="));
    // `y,,` (client supports channel binding, thinks we don't) too.
    login(&verifier, "correct horse", ChannelBinding::unrequested()).unwrap();
}

#[test]
fn client_key_is_the_password_derived_one() {
    let verifier = ScramVerifier::from_password("pw", b"0123456789abcdef", 4096);
    let success = login(&verifier, "pw", ChannelBinding::unsupported()).unwrap();
    let salted = hi(b"pw", b"0123456789abcdef", 4096);
    assert_eq!(success.client_key, hmac(&salted, &[b"Client Key"]));
}

#[test]
fn wrong_password_is_rejected() {
    let verifier = ScramVerifier::generate("correct horse");
    for wrong in ["correct horsE", "", "correct horse "] {
        assert_eq!(
            login(&verifier, wrong, ChannelBinding::unsupported()).unwrap_err(),
            AuthError::WrongPassword
        );
    }
}

#[test]
fn client_rejects_a_forged_server_final() {
    // Sanity check that the client really verifies our v=, so that the
    // tests above prove our ServerSignature right.
    let verifier = ScramVerifier::generate("pw");
    let mut forged = verifier.clone();
    forged.server_key[0] ^= 1;
    let mut client = ScramSha256::new(b"pw", ChannelBinding::unsupported());
    let (exchange, server_first) = ScramExchange::start(&forged, client.message()).unwrap();
    client.update(server_first.as_bytes()).unwrap();
    let success = exchange.finish(client.message()).unwrap();
    assert!(client.finish(success.server_final.as_bytes()).is_err());
}

#[test]
fn long_and_non_ascii_passwords() {
    // > 64 bytes exercises HMAC's key hashing. The non-ASCII one is
    // unchanged by SASLprep (already NFKC, no mapped characters).
    let long = "p".repeat(100);
    for pw in [long.as_str(), "pässwörd-日本", "with space"] {
        let verifier = ScramVerifier::generate(pw);
        login(&verifier, pw, ChannelBinding::unsupported()).unwrap();
        assert_eq!(
            login(&verifier, "other", ChannelBinding::unsupported()).unwrap_err(),
            AuthError::WrongPassword
        );
    }
}

#[test]
fn postgres15_verifier_authenticates() {
    let verifier = ScramVerifier::parse(PG15_SECRET).unwrap();
    assert_eq!(verifier.iterations, 4096);
    assert_eq!(verifier.salt.len(), 16);
    login(&verifier, "secret", ChannelBinding::unsupported()).unwrap();
    assert_eq!(
        login(&verifier, "wrong", ChannelBinding::unsupported()).unwrap_err(),
        AuthError::WrongPassword
    );
    // Our derivation reproduces PostgreSQL's exactly.
    let ours = ScramVerifier::from_password("secret", &verifier.salt, 4096);
    assert_eq!(ours, verifier);
    assert_eq!(ours.to_verifier_string(), PG15_SECRET);
    assert!(verifier.verify_password(b"secret"));
    assert!(!verifier.verify_password(b"Secret"));
}

#[test]
fn derivation_matches_postgres_protocol() {
    for pw in ["secret", "", "p".repeat(100).as_str()] {
        let theirs = postgres_protocol::password::scram_sha_256(pw.as_bytes());
        let parsed = ScramVerifier::parse(&theirs).unwrap();
        let ours = ScramVerifier::from_password(pw, &parsed.salt, parsed.iterations);
        assert_eq!(ours.to_verifier_string(), theirs);
    }
}

#[test]
fn verifier_string_round_trips() {
    let v = ScramVerifier::from_password("pencil", b"fixed-salt-16byt", 4096);
    let s = v.to_verifier_string();
    assert!(s.starts_with("SCRAM-SHA-256$4096:Zml4ZWQtc2FsdC0xNmJ5dA==$"));
    assert_eq!(ScramVerifier::parse(&s).unwrap(), v);
    let g = ScramVerifier::generate("pencil");
    assert_eq!(g.iterations, DEFAULT_ITERATIONS);
    assert_eq!(g.salt.len(), DEFAULT_SALT_LEN);
    assert_eq!(ScramVerifier::parse(&g.to_verifier_string()).unwrap(), g);
    assert_ne!(g.salt, ScramVerifier::generate("pencil").salt);
    // Zero iterations is taken as one rather than producing garbage.
    assert_eq!(ScramVerifier::from_password("x", b"s", 0).iterations, 1);
}

#[test]
fn hi_matches_rfc7677_test_vector() {
    // RFC 7677 section 3: user "user", password "pencil".
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let v = ScramVerifier::from_password("pencil", &salt, 4096);
    let client_first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    let (exchange, server_first) = ScramExchange::start(&v, client_first).unwrap();
    // Splice in the RFC's server nonce so that the AuthMessage matches.
    let rfc_nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let rfc_server_first = format!("r={rfc_nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    assert!(server_first.starts_with("r=rOprNGfwEbeRWgbNEkqO"));
    assert!(server_first.ends_with(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
    let exchange = ScramExchange {
        nonce: rfc_nonce.to_owned(),
        server_first: rfc_server_first,
        ..exchange
    };
    let client_final =
        format!("c=biws,r={rfc_nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    let success = exchange.finish(client_final.as_bytes()).unwrap();
    assert_eq!(
        success.server_final,
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
}

#[test]
fn server_nonce_extends_client_nonce() {
    let v = ScramVerifier::from_password("pw", b"salt", 16);
    let (_, a) = ScramExchange::start(&v, b"n,,n=,r=abc").unwrap();
    let (_, b) = ScramExchange::start(&v, b"n,,n=,r=abc").unwrap();
    let (na, nb) = (combined_nonce(&a), combined_nonce(&b));
    assert!(na.starts_with("abc") && nb.starts_with("abc"));
    assert_eq!(na.len(), 3 + 24);
    assert!(na.bytes().all(is_printable));
    assert_ne!(na, nb);
    assert!(a.ends_with(",s=c2FsdA==,i=16"), "{a}");
}

#[test]
fn accepted_client_first_variants() {
    let v = ScramVerifier::from_password("pw", b"salt", 16);
    for ok in [
        &b"n,,n=,r=abc"[..],
        b"y,,n=,r=abc",
        b"n,,n=user,r=abc",
        b"n,,n=*,r=abc",
        b"n,,n=,r=abc,x=ignored-extension",
        b"n,,n=,r=!\"#$%&'()*+-./~",
    ] {
        assert!(
            ScramExchange::start(&v, ok).is_ok(),
            "{}",
            String::from_utf8_lossy(ok)
        );
    }
}

#[test]
fn malformed_client_first_is_a_protocol_error() {
    let v = ScramVerifier::from_password("pw", b"salt", 16);
    for bad in [
        &b""[..],
        b"n",
        b"n,",
        b"n,,",
        b",,n=,r=abc",
        b"x,,n=,r=abc",
        b"p=tls-server-end-point,,n=,r=abc",
        b"n,a=admin,n=,r=abc",
        b"n,junk,n=,r=abc",
        b"n,,m=ext,n=,r=abc",
        b"n,,r=abc",
        b"n,,n=",
        b"n,,n=,",
        b"n,,n=,x=abc",
        b"n,,n=,r=",
        b"n,,n=,r=a c",
        b"n,,n=,r=abc\x7f",
        b"n,,n=,r=abc\x01",
        b"n,,n=,r=ab\xc3\xa9",
        b"n,,n=,r=abc,",
        b"n,,n=,r=abc,1=x",
        b"n,,n=,r=abc\0",
        b"n,,n=\xff\xfe,r=abc",
        b"\xff",
    ] {
        match ScramExchange::start(&v, bad) {
            Err(AuthError::Protocol(_)) => {}
            other => panic!("{}: {other:?}", String::from_utf8_lossy(bad)),
        }
    }
}

#[test]
fn malformed_client_final_is_a_protocol_error() {
    let (exchange, good) = exchange_and_client_final("pw");
    let (c, rest) = good.split_once(",r=").unwrap();
    let (nonce, proof) = rest.split_once(",p=").unwrap();
    assert_eq!(c, "c=biws");
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        b"c=biws".to_vec(),
        format!("c=biws,r={nonce}").into_bytes(),
        format!("c=biws,r={nonce},").into_bytes(),
        format!("c=biws,r={nonce},p=").into_bytes(),
        format!("c=eSws,r={nonce},p={proof}").into_bytes(),
        format!("c=,r={nonce},p={proof}").into_bytes(),
        format!("r={nonce},c=biws,p={proof}").into_bytes(),
        format!("c=biws,r={nonce}x,p={proof}").into_bytes(),
        format!("c=biws,r=x{nonce},p={proof}").into_bytes(),
        format!("c=biws,r=,p={proof}").into_bytes(),
        format!("c=biws,p={proof}").into_bytes(),
        format!("c=biws,r={nonce},p=!!!!{proof}").into_bytes(),
        format!("c=biws,r={nonce},p={}", &proof[..proof.len() - 4]).into_bytes(),
        format!("c=biws,r={nonce},p={proof}AAAA").into_bytes(),
        format!("c=biws,r={nonce},p={proof},x=1").into_bytes(),
        format!("c=biws,r={nonce},p={proof},p={proof}").into_bytes(),
        format!("c=biws,r={nonce},p={proof}\0").into_bytes(),
        format!("c=biws,r={nonce},1=x,p={proof}").into_bytes(),
        [format!("c=biws,r={nonce},p=").as_bytes(), b"\xff\xfe"].concat(),
        [b"c=biws,r=\xff,p=".as_slice(), proof.as_bytes()].concat(),
    ];
    for bad in cases {
        match dup(&exchange).finish(&bad) {
            Err(AuthError::Protocol(_)) => {}
            other => panic!("{}: {other:?}", String::from_utf8_lossy(&bad)),
        }
    }
    assert!(exchange.finish(good.as_bytes()).is_ok());
}

#[test]
fn extension_before_proof_is_accepted_but_covered_by_the_proof() {
    // An extension attribute is part of client-final-without-proof, so a
    // real client's proof no longer matches once one is spliced in.
    let (exchange, good) = exchange_and_client_final("pw");
    let spliced = good.replacen(",p=", ",x=ext,p=", 1);
    assert_eq!(
        exchange.finish(spliced.as_bytes()).unwrap_err(),
        AuthError::WrongPassword
    );
}

#[test]
fn truncations_and_garbage_never_panic() {
    let v = ScramVerifier::from_password("pw", b"salt", 16);
    let mut client = ScramSha256::new(b"pw", ChannelBinding::unsupported());
    let client_first = client.message().to_vec();
    for i in 0..=client_first.len() {
        let _ = ScramExchange::start(&v, &client_first[..i]);
    }
    let (exchange, server_first) = ScramExchange::start(&v, &client_first).unwrap();
    client.update(server_first.as_bytes()).unwrap();
    let client_final = client.message().to_vec();
    for i in 0..client_final.len() {
        assert!(
            dup(&exchange).finish(&client_final[..i]).is_err(),
            "prefix {i}"
        );
    }
    // Deterministic pseudo-random garbage, including mutations of valid
    // messages.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut msg = if next() % 2 == 0 {
            client_final.clone()
        } else {
            client_first.clone()
        };
        for _ in 0..(next() % 4 + 1) {
            let pos = (next() as usize) % msg.len();
            msg[pos] = next() as u8;
        }
        let _ = ScramExchange::start(&v, &msg);
        let _ = dup(&exchange).finish(&msg);
    }
    assert!(exchange.finish(&client_final).is_ok());
}

#[test]
fn malformed_verifiers_are_rejected() {
    let key = STANDARD.encode([7u8; 32]);
    let short = STANDARD.encode([7u8; 31]);
    for bad in [
        String::new(),
        "SCRAM-SHA-256".to_owned(),
        "SCRAM-SHA-1$4096:c2FsdA==$".to_owned() + &key + ":" + &key,
        "SCRAM-SHA-256$4096:c2FsdA==".to_owned(),
        format!("SCRAM-SHA-256$4096:c2FsdA==${key}"),
        format!("SCRAM-SHA-256$4096c2FsdA==${key}:{key}"),
        format!("SCRAM-SHA-256$:c2FsdA==${key}:{key}"),
        format!("SCRAM-SHA-256$0:c2FsdA==${key}:{key}"),
        format!("SCRAM-SHA-256$-1:c2FsdA==${key}:{key}"),
        format!("SCRAM-SHA-256$99999999999:c2FsdA==${key}:{key}"),
        format!("SCRAM-SHA-256$4096:${key}:{key}"),
        format!("SCRAM-SHA-256$4096:c2FsdA=${key}:{key}"),
        format!("SCRAM-SHA-256$4096:c2Fs!A==${key}:{key}"),
        format!("SCRAM-SHA-256$4096:c2FsdA==${short}:{key}"),
        format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{short}"),
        format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{key}$"),
        format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{key}:"),
    ] {
        match ScramVerifier::parse(&bad) {
            Err(AuthError::BadVerifier(_)) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(ScramVerifier::parse(&format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{key}")).is_ok());
}
