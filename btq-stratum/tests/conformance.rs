//! Conformance: recorded exchanges typical of real miners, and every error path, with exact
//! response bytes. Exchanges are modelled on the request shapes of cgminer/bfgminer, cpuminer,
//! ESP-Miner (Bitaxe) and NerdMiner as described in `shared/stratum-v1.md` §1 and §5.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use btq_core::pow::ShareDifficulty;
use btq_stratum::message::Notification;
use btq_stratum::{
    Config, DisconnectReason, JobId, Phase, RejectReason, RespondError, ServerEvent, Verdict,
};
use common::{Harness, job, submit_line};

const NOTIFY_1A_CLEAN: &str = "{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"1a\",\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\",\"0102\",\"03\",[\"abababababababababababababababababababababababababababababababab\"],\"20000000\",\"1d00ffff\",\"66000000\",true]}";

fn harness() -> Harness {
    let mut h = Harness::new(Config::default());
    h.server.broadcast_job(&job(0x1a, true)).unwrap();
    h
}

#[test]
fn cgminer_exchange() {
    let mut h = harness();
    let s = h.connect("192.0.2.1");
    h.send(
        s,
        "{\"id\": 0, \"method\": \"mining.subscribe\", \"params\": [\"cgminer/4.12.1\"]}\n",
    );
    assert_eq!(
        h.take(s),
        "{\"id\":0,\"result\":[[[\"mining.set_difficulty\",\"00000000\"],[\"mining.notify\",\"00000000\"]],\"00000000\",4],\"error\":null}\n"
    );
    h.send(
        s,
        "{\"id\": 1, \"method\": \"mining.extranonce.subscribe\", \"params\": []}\n",
    );
    assert_eq!(h.take(s), "{\"id\":1,\"result\":true,\"error\":null}\n");
    h.send(
        s,
        "{\"id\": 2, \"method\": \"mining.authorize\", \"params\": [\"btq1qxyz.rig1\", \"x\"]}\n",
    );
    assert_eq!(h.take(s), "", "authorize waits for the host");
    let ServerEvent::Authorize(a) = h.events.pop().unwrap() else {
        panic!()
    };
    assert_eq!(&*a.username, "btq1qxyz.rig1");
    assert_eq!(a.password.as_deref(), Some("x"));
    h.server.respond(h.now, a.token, Verdict::Accepted).unwrap();
    h.pump();
    assert_eq!(
        h.take_lines(s),
        vec![
            "{\"id\":2,\"result\":true,\"error\":null}".to_owned(),
            "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[1]}".to_owned(),
            NOTIFY_1A_CLEAN.to_owned(),
        ]
    );
    h.send(
        s,
        &submit_line(4, "btq1qxyz.rig1", "1a", "0000002a", "66000010", "deadbeef"),
    );
    let ServerEvent::Submit(sub) = h.events.pop().unwrap() else {
        panic!()
    };
    assert_eq!(sub.job_id, JobId::from_u64(0x1a));
    assert_eq!(sub.extranonce1.as_bytes(), &[0, 0, 0, 0]);
    assert_eq!(sub.extranonce2.as_bytes(), &[0, 0, 0, 0x2a]);
    assert_eq!(
        (sub.ntime, sub.nonce, sub.version),
        (0x6600_0010, 0xdead_beef, 0x2000_0000)
    );
    assert_eq!(sub.difficulty.get(), 1.0);
    assert_eq!(&*sub.user, "btq1qxyz.rig1");
    h.server
        .respond(h.now, sub.token, Verdict::Accepted)
        .unwrap();
    h.pump();
    assert_eq!(h.take(s), "{\"id\":4,\"result\":true,\"error\":null}\n");
    // The same share again: the pool finds the duplicate.
    h.send(
        s,
        &submit_line(5, "btq1qxyz.rig1", "1a", "0000002a", "66000010", "deadbeef"),
    );
    let ServerEvent::Submit(sub) = h.events.pop().unwrap() else {
        panic!()
    };
    h.server
        .respond(h.now, sub.token, Verdict::Rejected(RejectReason::Duplicate))
        .unwrap();
    h.pump();
    assert_eq!(
        h.take(s),
        "{\"id\":5,\"result\":null,\"error\":[22,\"Duplicate share\",null]}\n"
    );
    // Low difficulty and block found.
    h.send(
        s,
        &submit_line(6, "btq1qxyz.rig1", "1a", "0000002b", "66000010", "00000001"),
    );
    h.send(
        s,
        &submit_line(7, "btq1qxyz.rig1", "1a", "0000002c", "66000010", "00000002"),
    );
    let evs = std::mem::take(&mut h.events);
    let [ServerEvent::Submit(a), ServerEvent::Submit(b)] = &evs[..] else {
        panic!("{evs:?}")
    };
    h.server
        .respond(
            h.now,
            a.token,
            Verdict::Rejected(RejectReason::LowDifficulty),
        )
        .unwrap();
    h.server
        .respond(h.now, b.token, Verdict::BlockFound)
        .unwrap();
    h.pump();
    assert_eq!(
        h.take(s),
        "{\"id\":6,\"result\":null,\"error\":[23,\"Low difficulty share\",null]}\n{\"id\":7,\"result\":true,\"error\":null}\n"
    );
}

#[test]
fn cpuminer_exchange_and_string_ids() {
    let mut h = harness();
    let s = h.connect("2001:db8::5");
    h.send(
        s,
        "{\"id\":\"s1\",\"method\":\"mining.subscribe\",\"params\":[\"cpuminer/2.5.1\"]}\r\n",
    );
    let r: serde_json::Value = serde_json::from_str(&h.take(s)).unwrap();
    assert_eq!(r["id"], "s1");
    assert_eq!(r["error"], serde_json::Value::Null);
    assert_eq!(r["result"][2], 4);
    h.send(
        s,
        "{\"id\":{\"n\":2},\"method\":\"mining.authorize\",\"params\":[\"user\",\"pass\"]}\n",
    );
    h.answer_all(Verdict::Accepted, Verdict::Accepted);
    assert!(
        h.take(s)
            .starts_with("{\"id\":{\"n\":2},\"result\":true,\"error\":null}\n")
    );
    h.send(
        s,
        &submit_line(3, "user", "1a", "00000000", "66000000", "00000000"),
    );
    h.answer_all(Verdict::Accepted, Verdict::Accepted);
    assert_eq!(h.take(s), "{\"id\":3,\"result\":true,\"error\":null}\n");
}

#[test]
fn bitaxe_configure_suggest_before_subscribe_and_xor_version_bits() {
    let mut h = harness();
    let s = h.connect("198.51.100.9");
    h.send(
        s,
        "{\"id\": 1, \"method\": \"mining.configure\", \"params\": [[\"version-rolling\"], {\"version-rolling.mask\": \"ffffffff\"}]}\n",
    );
    assert_eq!(
        h.take(s),
        "{\"id\":1,\"result\":{\"version-rolling\":true,\"version-rolling.mask\":\"1fffe000\"},\"error\":null}\n"
    );
    h.send(
        s,
        "{\"id\": 2, \"method\": \"mining.suggest_difficulty\", \"params\": [1000]}\n",
    );
    assert_eq!(h.take(s), "{\"id\":2,\"result\":true,\"error\":null}\n");
    h.send(
        s,
        "{\"id\": 3, \"method\": \"mining.subscribe\", \"params\": [\"bitaxe/BM1370/v2.4.0\"]}\n",
    );
    h.take(s);
    h.send(
        s,
        "{\"id\": 4, \"method\": \"mining.authorize\", \"params\": [\"btq1qaxe.bitaxe\", \"x\"]}\n",
    );
    h.answer_all(Verdict::Accepted, Verdict::Accepted);
    let lines = h.take_lines(s);
    assert_eq!(
        lines[1],
        "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[1000]}"
    );
    let info = h.server.session(s).unwrap();
    assert_eq!(info.version_mask, Some(0x1fff_e000));
    assert_eq!(info.phase, Phase::Authorized);
    // ESP-Miner submits rolled_version XOR job_version.
    h.send(
        s,
        "{\"id\": 5, \"method\": \"mining.submit\", \"params\": [\"btq1qaxe.bitaxe\", \"1a\", \"00000001\", \"66000000\", \"0badcafe\", \"00a00000\"]}\n",
    );
    let ServerEvent::Submit(sub) = h.events.pop().unwrap() else {
        panic!()
    };
    assert_eq!(sub.version_bits, Some(0x00a0_0000));
    assert_eq!(sub.version, 0x20a0_0000);
    assert_eq!(sub.difficulty.get(), 1000.0);
    // Bits outside the negotiated mask are rejected by the server itself.
    h.send(
        s,
        "{\"id\": 6, \"method\": \"mining.submit\", \"params\": [\"btq1qaxe.bitaxe\", \"1a\", \"00000001\", \"66000000\", \"0badcafe\", \"80000000\"]}\n",
    );
    assert_eq!(
        h.take(s),
        "{\"id\":6,\"result\":null,\"error\":[20,\"Invalid version bits\",null]}\n"
    );
}

#[test]
fn configure_min_bit_count_and_unknown_extensions() {
    let mut h = harness();
    let s = h.connect("198.51.100.10");
    h.send(
        s,
        "{\"id\":1,\"method\":\"mining.configure\",\"params\":[[\"version-rolling\",\"minimum-difficulty\",\"subscribe-extranonce\",\"info\"],{\"version-rolling.mask\":\"00006000\",\"version-rolling.min-bit-count\":4,\"minimum-difficulty.value\":2048}]}\n",
    );
    assert_eq!(
        h.take(s),
        "{\"id\":1,\"result\":{\"version-rolling\":false,\"minimum-difficulty\":true,\"subscribe-extranonce\":true,\"info\":false},\"error\":null}\n"
    );
    let info = h.server.session(s).unwrap();
    assert_eq!(info.version_mask, None);
    assert_eq!(info.difficulty.get(), 2048.0);
}

#[test]
fn nerdminer_fractional_difficulty() {
    let mut h = harness();
    let s = h.connect("203.0.113.50");
    h.send(
        s,
        "{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"NerdMinerV2\"]}\n",
    );
    h.send(
        s,
        "{\"id\": 2, \"method\": \"mining.authorize\", \"params\": [\"btq1qnerd\", \"x\"]}\n",
    );
    h.send(
        s,
        "{\"id\": 3, \"method\": \"mining.suggest_difficulty\", \"params\": [0.00015]}\n",
    );
    h.answer_all(Verdict::Accepted, Verdict::Accepted);
    let lines = h.take_lines(s);
    assert!(
        lines.contains(&"{\"id\":3,\"result\":true,\"error\":null}".to_owned()),
        "{lines:?}"
    );
    let n = lines.len();
    assert_eq!(
        lines[n - 2],
        "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[0.00015]}"
    );
    assert!(
        lines[n - 1].contains("mining.notify"),
        "difficulty applies with the next job"
    );
    assert_eq!(h.server.session(s).unwrap().difficulty.get(), 0.00015);
    // Below the floor (0.0001) is clamped.
    h.send(
        s,
        "{\"id\": 4, \"method\": \"mining.suggest_difficulty\", \"params\": [0.00000001]}\n",
    );
    assert!(h.take(s).contains("\"params\":[0.0001]"));
}

#[test]
fn error_paths_each_get_their_error_and_others_keep_working() {
    let mut h = Harness::new(Config {
        max_junk_per_session: 100,
        ..Config::default()
    });
    h.server.broadcast_job(&job(0x1a, true)).unwrap();
    let good = h.miner("192.0.2.100", "good");
    let s = h.connect("192.0.2.200");
    let cases: &[(&str, &str)] = &[
        (
            "{not json\n",
            "{\"id\":null,\"result\":null,\"error\":[20,\"Malformed request\",null]}\n",
        ),
        (
            "[1,2,3]\n",
            "{\"id\":null,\"result\":null,\"error\":[20,\"Malformed request\",null]}\n",
        ),
        (
            "{\"id\":9,\"params\":[]}\n",
            "{\"id\":9,\"result\":null,\"error\":[20,\"Missing method\",null]}\n",
        ),
        (
            "{\"id\":10,\"method\":\"mining.get_transactions\",\"params\":[\"1a\"]}\n",
            "{\"id\":10,\"result\":null,\"error\":[20,\"Unknown method\",null]}\n",
        ),
        (
            "{\"id\":11,\"method\":\"mining.submit\",\"params\":[\"u\",\"1a\",\"0000\",\"66000000\",\"00000000\"]}\n",
            "{\"id\":11,\"result\":null,\"error\":[25,\"Not subscribed\",null]}\n",
        ),
        (
            "{\"id\":12,\"method\":\"mining.authorize\",\"params\":[\"u\",\"p\"]}\n",
            "{\"id\":12,\"result\":null,\"error\":[25,\"Not subscribed\",null]}\n",
        ),
    ];
    for (line, want) in cases {
        h.send(s, line);
        assert_eq!(&h.take(s), want, "for {line}");
    }
    h.send(
        s,
        "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n",
    );
    h.take(s);
    let cases: &[(&str, &str)] = &[
        (
            "{\"id\":13,\"method\":\"mining.submit\",\"params\":[\"u\",\"1a\",\"00000000\",\"66000000\",\"00000000\"]}\n",
            "{\"id\":13,\"result\":null,\"error\":[24,\"Unauthorized worker\",null]}\n",
        ),
        (
            "{\"id\":14,\"method\":\"mining.submit\",\"params\":[\"u\",\"1a\",\"zz000000\",\"66000000\",\"00000000\"]}\n",
            "{\"id\":14,\"result\":null,\"error\":[20,\"Invalid hex\",null]}\n",
        ),
        (
            "{\"id\":15,\"method\":\"mining.submit\",\"params\":[\"u\",\"1a\"]}\n",
            "{\"id\":15,\"result\":null,\"error\":[20,\"Wrong number of parameters\",null]}\n",
        ),
        (
            "{\"id\":16,\"method\":\"mining.authorize\",\"params\":[]}\n",
            "{\"id\":16,\"result\":null,\"error\":[20,\"Wrong number of parameters\",null]}\n",
        ),
        (
            "{\"id\":17,\"method\":\"mining.suggest_difficulty\",\"params\":[-1]}\n",
            "{\"id\":17,\"result\":null,\"error\":[20,\"Invalid parameters\",null]}\n",
        ),
        (
            "{\"id\":18,\"method\":\"mining.submit\",\"params\":[\"u\",\"1a\",\"00000000\",\"6600000\",\"00000000\"]}\n",
            "{\"id\":18,\"result\":null,\"error\":[20,\"Invalid hex\",null]}\n",
        ),
        (
            "{\"id\":19,\"method\":\"mining.submit\",\"params\":\"nope\"}\n",
            "{\"id\":19,\"result\":null,\"error\":[20,\"Invalid parameters\",null]}\n",
        ),
    ];
    for (line, want) in cases {
        h.send(s, line);
        assert_eq!(&h.take(s), want, "for {line}");
    }
    assert!(h.disconnects.is_empty());
    // Oversized line: disconnected (the cap is checked before any parsing).
    let big = format!("{{\"id\":1,\"method\":\"{}\"}}\n", "x".repeat(5000));
    h.send(s, &big);
    assert_eq!(h.disconnects, vec![(s, DisconnectReason::LineTooLong)]);
    // Even without a newline.
    let s2 = h.connect("192.0.2.201");
    h.send(s2, &"y".repeat(4097));
    assert_eq!(
        h.disconnects.last(),
        Some(&(s2, DisconnectReason::LineTooLong))
    );
    // The honest miner is unaffected.
    h.send(
        good,
        &submit_line(7, "good", "1a", "00000001", "66000000", "00000000"),
    );
    h.answer_all(Verdict::Accepted, Verdict::Accepted);
    assert_eq!(h.take(good), "{\"id\":7,\"result\":true,\"error\":null}\n");
}

#[test]
fn share_checks_decided_by_the_server() {
    let mut h = harness();
    let s = h.miner("192.0.2.3", "w");
    let cases = [
        (
            submit_line(1, "w", "ff", "00000000", "66000000", "00000000"),
            "[21,\"Job not found (stale)\",null]",
        ),
        (
            submit_line(2, "w", "1a", "000000", "66000000", "00000000"),
            "[20,\"Invalid extranonce2 size\",null]",
        ),
        (
            submit_line(3, "w", "1a", "00000000", "65ffffff", "00000000"),
            "[20,\"Ntime out of range\",null]",
        ),
        (
            submit_line(4, "w", "1a", "00000000", "66001b59", "00000000"),
            "[20,\"Ntime out of range\",null]",
        ),
        (
            submit_line(5, "other", "1a", "00000000", "66000000", "00000000"),
            "[24,\"Unauthorized worker\",null]",
        ),
    ];
    for (line, want) in cases {
        h.send(s, &line);
        let got = h.take(s);
        assert!(got.contains(want), "{line} -> {got}");
    }
    assert!(h.events.is_empty());
    // ntime at the end of the roll window is fine.
    h.send(
        s,
        &submit_line(6, "w", "1a", "00000000", "66001b58", "00000000"),
    );
    assert!(matches!(h.events.pop(), Some(ServerEvent::Submit(_))));
}

#[test]
fn clean_jobs_makes_older_jobs_stale() {
    let mut h = harness();
    let s = h.miner("192.0.2.4", "w");
    h.server.broadcast_job(&job(0x1b, false)).unwrap();
    h.pump();
    assert!(h.take(s).ends_with("false]}\n"));
    h.send(
        s,
        &submit_line(1, "w", "1a", "00000000", "66000000", "00000000"),
    );
    assert_eq!(h.events.len(), 1, "1a is still current");
    h.events.clear();
    h.server.broadcast_job(&job(0x1c, true)).unwrap();
    h.send(
        s,
        &submit_line(2, "w", "1b", "00000000", "66000000", "00000000"),
    );
    h.send(
        s,
        &submit_line(3, "w", "1a", "00000000", "66000000", "00000000"),
    );
    let out = h.take(s);
    assert!(
        out.contains("{\"id\":2,\"result\":null,\"error\":[21,\"Job not found (stale)\",null]}")
    );
    assert!(
        out.contains("{\"id\":3,\"result\":null,\"error\":[21,\"Job not found (stale)\",null]}")
    );
    assert!(h.events.is_empty());
}

#[test]
fn late_answers_are_dropped_without_side_effects() {
    let mut h = harness();
    let s = h.connect("192.0.2.5");
    h.send(
        s,
        "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n",
    );
    h.send(
        s,
        "{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"u\",\"p\"]}\n",
    );
    let ServerEvent::Authorize(a) = h.events.pop().unwrap() else {
        panic!()
    };
    // The miner disconnects while the node is validating the address.
    assert!(h.server.handle_close(h.now, s));
    // A new connection reuses the slot.
    let s2 = h.connect("192.0.2.5");
    assert_eq!(s2.index(), s.index());
    assert_ne!(s2, s);
    let before = h.server.stats();
    let r = h.server.respond(
        h.now,
        a.token,
        Verdict::Rejected(RejectReason::Unauthorized),
    );
    assert_eq!(r, Err(RespondError::SessionGone(s)));
    let after = h.server.stats();
    assert_eq!(after.answers_dropped, before.answers_dropped + 1);
    assert_eq!(
        (after.bans, after.sessions, after.pending_requests),
        (before.bans, before.sessions, 0)
    );
    h.pump();
    assert_eq!(h.take(s2), "");
    assert_eq!(h.server.session(s2).unwrap().phase, Phase::Connected);
    // Answering twice: the second is dropped.
    h.send(
        s2,
        "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n",
    );
    h.send(
        s2,
        "{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"u\",\"p\"]}\n",
    );
    let ServerEvent::Authorize(a) = h.events.pop().unwrap() else {
        panic!()
    };
    h.server.respond(h.now, a.token, Verdict::Accepted).unwrap();
    assert_eq!(
        h.server.respond(h.now, a.token, Verdict::Accepted),
        Err(RespondError::UnknownRequest)
    );
    // Operations on the stale id fail.
    assert!(h.server.handle_bytes(h.now, s, b"x\n").is_err());
    assert!(!h.server.handle_close(h.now, s));
}

#[test]
fn node_failures_never_penalize() {
    let mut h = harness();
    let s = h.miner("192.0.2.6", "w");
    for i in 0..500u64 {
        h.send(
            s,
            &submit_line(i, "w", "1a", "00000000", "66000000", "00000000"),
        );
        h.answer_all(Verdict::Accepted, Verdict::NodeUnavailable);
        h.advance(100);
    }
    let out = h.take(s);
    assert!(out.contains("[20,\"Service temporarily unavailable\",null]"));
    let st = h.server.stats();
    assert_eq!(st.bans_issued, 0);
    assert!(h.disconnects.is_empty());
    // Authorize failures on the node side too.
    let s2 = h.connect("192.0.2.7");
    h.send(
        s2,
        "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n",
    );
    for i in 0..100 {
        h.send(
            s2,
            &format!("{{\"id\":{i},\"method\":\"mining.authorize\",\"params\":[\"u\",\"p\"]}}\n"),
        );
        h.answer_all(Verdict::InternalError, Verdict::Accepted);
        h.advance(1000);
    }
    assert_eq!(h.server.stats().bans_issued, 0);
}

#[test]
fn request_timeout_answers_without_penalty() {
    let mut h = harness();
    let s = h.miner("192.0.2.8", "w");
    h.send(
        s,
        &submit_line(1, "w", "1a", "00000000", "66000000", "00000000"),
    );
    let ServerEvent::Submit(sub) = h.events.pop().unwrap() else {
        panic!()
    };
    h.advance(31_000);
    assert_eq!(
        h.take(s),
        "{\"id\":1,\"result\":null,\"error\":[20,\"Request timed out\",null]}\n"
    );
    assert_eq!(
        h.server.respond(h.now, sub.token, Verdict::Accepted),
        Err(RespondError::UnknownRequest)
    );
    assert_eq!(h.server.stats().pending_requests, 0);
}

#[test]
fn invalid_share_ratio_bans_the_prefix_only() {
    let mut h = harness();
    let bad = h.miner("2001:db8:1:1::1", "bad");
    let good = h.miner("2001:db8:1:2::1", "good");
    for i in 0..60u64 {
        h.send(
            bad,
            &submit_line(i, "bad", "1a", "00000000", "66000000", "00000000"),
        );
        h.answer_all(
            Verdict::Accepted,
            Verdict::Rejected(RejectReason::LowDifficulty),
        );
        h.advance(200);
    }
    assert!(h.disconnects.contains(&(bad, DisconnectReason::Banned)));
    assert!(h.events.iter().any(|e| matches!(
        e,
        ServerEvent::Banned {
            reason: btq_stratum::BanReason::InvalidShares,
            ..
        }
    )));
    // Another address in the same /64 is refused; another /64 is fine.
    let r = h
        .server
        .handle_connect(h.now, "2001:db8:1:1::99".parse().unwrap());
    assert_eq!(r, Err(btq_stratum::Refused::Banned));
    h.send(
        good,
        &submit_line(1, "good", "1a", "00000000", "66000000", "00000000"),
    );
    h.answer_all(Verdict::Accepted, Verdict::Accepted);
    assert!(
        h.take(good)
            .contains("{\"id\":1,\"result\":true,\"error\":null}")
    );
    // Bans expire.
    h.server.handle_close(h.now, bad);
    h.advance(601_000);
    assert!(
        h.server
            .handle_connect(h.now, "2001:db8:1:1::99".parse().unwrap())
            .is_ok()
    );
}

#[test]
fn junk_and_flood_disconnect_then_ban() {
    let mut h = harness();
    let mut banned = false;
    for round in 0..10 {
        let Ok(s) = h
            .server
            .handle_connect(h.now, "192.0.2.66".parse().unwrap())
        else {
            banned = true;
            break;
        };
        for _ in 0..9 {
            h.send(s, "garbage\n");
        }
        assert!(h.disconnects.iter().any(|d| d.0 == s), "round {round}");
        h.server.handle_close(h.now, s);
    }
    assert!(banned);
    // Flood: a burst far beyond the token bucket.
    let s = h.connect("192.0.2.67");
    let burst = "{\"id\":1,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n".repeat(400);
    h.send(s, &burst);
    assert!(h.disconnects.contains(&(s, DisconnectReason::Flood)));
    assert!(h.take(s).lines().count() <= 200);
}

#[test]
fn admission_caps() {
    let cfg = Config {
        max_sessions: 10,
        max_tracked_prefixes: 10,
        max_sessions_per_prefix: 3,
        ..Config::default()
    };
    let mut h = Harness::new(cfg);
    for i in 0..3 {
        h.connect(&format!("2001:db8:5:5::{i}"));
    }
    let r = h
        .server
        .handle_connect(h.now, "2001:db8:5:5::ff".parse().unwrap());
    assert_eq!(r, Err(btq_stratum::Refused::PrefixFull));
    for i in 0..7 {
        h.connect(&format!("10.0.0.{i}"));
    }
    let r = h.server.handle_connect(h.now, "10.9.9.9".parse().unwrap());
    assert_eq!(r, Err(btq_stratum::Refused::ServerFull));
    let st = h.server.stats();
    assert_eq!((st.sessions, st.tracked_prefixes), (10, 8));
    // Rate limit on attempts per window.
    let cfg = Config {
        max_connects_per_prefix: 5,
        ..Config::default()
    };
    let mut h = Harness::new(cfg);
    for _ in 0..5 {
        let s = h.connect("192.0.2.9");
        h.server.handle_close(h.now, s);
    }
    let r = h.server.handle_connect(h.now, "192.0.2.9".parse().unwrap());
    assert_eq!(r, Err(btq_stratum::Refused::RateLimited));
    h.advance(61_000);
    assert!(
        h.server
            .handle_connect(h.now, "192.0.2.9".parse().unwrap())
            .is_ok()
    );
}

#[test]
fn ban_table_is_lru_bounded_and_constant_size() {
    let cfg = Config {
        max_bans: 100,
        ..Config::default()
    };
    let mut h = Harness::new(cfg);
    for i in 0..10_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        h.server
            .ban(h.now, ip.into(), core::time::Duration::from_secs(60));
        assert!(h.server.stats().bans <= 100);
    }
    assert_eq!(h.server.stats().sessions, 0);
    assert!(h.server.is_banned(
        h.now,
        std::net::Ipv4Addr::from(0x0a00_0000u32 + 9_999).into()
    ));
    assert!(
        !h.server
            .is_banned(h.now, std::net::Ipv4Addr::from(0x0a00_0000u32).into())
    );
    assert!(h.server.stats().ban_notices <= btq_stratum::server::MAX_BAN_NOTICES);
}

#[test]
fn extranonce1_unique_and_rotating() {
    let mut h = harness();
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<_> = (0..50).map(|i| h.connect(&format!("10.1.0.{i}"))).collect();
    for id in &ids {
        assert!(seen.insert(h.server.session(*id).unwrap().extranonce1));
    }
    let old = h.server.session(ids[3]).unwrap().extranonce1;
    h.server.handle_close(h.now, ids[3]);
    let n = h.connect("10.2.0.1");
    let new = h.server.session(n).unwrap().extranonce1;
    assert_ne!(old, new);
    assert!(!seen.contains(&new));
}

#[test]
fn slow_reader_is_disconnected() {
    let mut h = harness();
    let s = h.miner("192.0.2.11", "w");
    // Never drain this session's output: broadcast until the cap is hit.
    let mut i = 0x100;
    while h.disconnects.is_empty() {
        h.server.broadcast_job(&job(i, false)).unwrap();
        while let Some(ev) = h.server.poll_event() {
            if let ServerEvent::Disconnect { session, reason } = ev {
                h.disconnects.push((session, reason));
            }
        }
        i += 1;
        assert!(i < 10_000);
        assert!(h.server.stats().max_session_output <= h.server.config().max_output_bytes);
    }
    assert_eq!(h.disconnects, vec![(s, DisconnectReason::OutputOverflow)]);
}

#[test]
fn server_notifications_and_vardiff_renotify() {
    let mut h = harness();
    let s = h.miner("192.0.2.12", "w");
    h.server
        .send(s, &Notification::ShowMessage("maintenance at 12:00"))
        .unwrap();
    h.server
        .send(
            s,
            &Notification::Reconnect {
                host: None,
                port: None,
                wait_secs: None,
            },
        )
        .unwrap();
    h.server
        .send(s, &Notification::SetVersionMask(0x1fff_e000))
        .unwrap();
    h.pump();
    assert_eq!(
        h.take_lines(s),
        vec![
            "{\"id\":null,\"method\":\"client.show_message\",\"params\":[\"maintenance at 12:00\"]}",
            "{\"id\":null,\"method\":\"client.reconnect\",\"params\":[]}",
            "{\"id\":null,\"method\":\"mining.set_version_mask\",\"params\":[\"1fffe000\"]}",
        ]
    );
    h.server
        .set_difficulty(h.now, s, ShareDifficulty::new(64.0).unwrap())
        .unwrap();
    h.pump();
    let lines = h.take_lines(s);
    assert_eq!(
        lines[0],
        "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[64]}"
    );
    assert!(lines[1].contains("mining.notify"));
    // Shares arriving fast raise the difficulty; the previous one is offered for the grace.
    for i in 0..20u64 {
        h.send(
            s,
            &submit_line(i, "w", "1a", "00000000", "66000000", "00000000"),
        );
        h.answer_all(Verdict::Accepted, Verdict::Accepted);
        h.advance(10);
    }
    assert_eq!(h.server.session(s).unwrap().difficulty.get(), 512.0);
    h.send(
        s,
        &submit_line(99, "w", "1a", "00000000", "66000000", "00000000"),
    );
    let ServerEvent::Submit(sub) = h.events.pop().unwrap() else {
        panic!()
    };
    assert_eq!(sub.previous_difficulty.map(|d| d.get()), Some(64.0));
}

#[test]
fn handshake_and_idle_timeouts() {
    let mut h = harness();
    let s = h.connect("192.0.2.13");
    h.advance(61_000);
    assert_eq!(h.disconnects, vec![(s, DisconnectReason::HandshakeTimeout)]);
}

#[test]
fn worst_case_memory_is_documented_size() {
    let b = Config::default().worst_case_memory();
    assert!(b.total > b.sessions && b.sessions > 0);
    // Keep the documented "about 1.4 GiB" honest.
    let gib = b.total as f64 / (1u64 << 30) as f64;
    assert!((1.3..1.45).contains(&gib), "{gib} GiB: {b:?}");
}
