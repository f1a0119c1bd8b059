"""pytest suite for the btq_kit Python package (UniFFI over btq-ffi): every area, bad input."""
import json
import os
import time
from pathlib import Path

import pytest

import btq_kit

VECTORS = Path(os.environ.get("BTQ_VECTORS", Path(__file__).resolve().parents[3].parent / "shared" / "vectors"))
TXV = json.loads((VECTORS / "btq_tx_vectors.json").read_text())
SPEND = TXV["spends"]["p2wpkh_dilithium_bip143"]
GBT = (VECTORS / "gbt-empty.json").read_text()
SEED = bytes(range(32))
PKH = bytes.fromhex("4006068b71b291a07284b6fd3b5ba5794d7b1568")
MAIN_ADDR = "qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58"


def test_version():
    assert btq_kit.version() == "0.1.0"


# ---- transactions and blocks ----

def test_tx_decode_accessors_and_info():
    tx = btq_kit.Tx.decode(bytes.fromhex(SPEND["tx_hex"]))
    assert tx.txid() == SPEND["txid"]
    assert tx.wtxid() == SPEND["wtxid"]
    assert tx.weight() == int(SPEND["weight"])
    assert tx.vsize() == int(SPEND["vsize"])
    assert tx.input_count() == 1 and tx.output_count() == 1
    info = tx.info()
    assert info.txid == SPEND["txid"] and info.size == int(SPEND["size"])
    assert info.inputs[0].prev_vout == 0 and len(info.inputs[0].witness) == 2
    assert info.outputs[0].script_type == "witness_v0_keyhash"
    assert tx.to_bytes().hex() == SPEND["tx_hex"]
    j = json.loads(tx.to_json("main"))
    assert j["vout"][0]["scriptPubKey"]["address"] == MAIN_ADDR
    assert btq_kit.Tx.from_hex(SPEND["tx_hex"]).txid() == SPEND["txid"]


@pytest.mark.parametrize("bad", [b"", b"\x01\x02\x03", b"\xff" * 100])
def test_tx_decode_bad_bytes(bad):
    with pytest.raises(btq_kit.BtqError.Decode) as e:
        btq_kit.Tx.decode(bad)
    assert e.value.message  # the Rust error text
    assert "Decode" in type(e.value).__name__


def test_tx_bad_hex_and_network():
    with pytest.raises(btq_kit.BtqError.Decode):
        btq_kit.Tx.from_hex("zz")
    tx = btq_kit.Tx.from_hex(SPEND["tx_hex"])
    with pytest.raises(btq_kit.BtqError.InvalidArgument):
        tx.to_json("nonet")


def test_block_from_pool_and_bad():
    pool = btq_kit.Pool(btq_kit.LithiumKeypair.from_seed(SEED).p2wpkh_address("regtest"), "regtest")
    job = json.loads(pool.add_template(GBT))
    ntime = "%08x" % json.loads(GBT)["curtime"]
    block_hex = None
    for nonce in range(256):
        r = json.loads(pool.validate_share("m.1", "00000001", 1e-6, 0, job["job_id"], "00000009", ntime,
                                           "%08x" % nonce, None, 1795508800))
        if r["accepted"] and r["is_block"]:
            block_hex = r["block_hex"]
            break
    assert block_hex is not None  # regtest target: about every other header is a block
    b = btq_kit.Block.decode(bytes.fromhex(block_hex))
    assert b.tx_count() == 1 and len(b.txids()) == 1 and b.bip34_height() == 349
    j = json.loads(b.to_json())
    assert j["hash"] == b.block_hash() == r["hash"] and j["weight"] == b.weight()
    with pytest.raises(btq_kit.BtqError.Decode):
        btq_kit.Block.decode(b"\x00" * 10)


def test_sighash_vector():
    tx = btq_kit.Tx.from_hex(SPEND["tx_hex"])
    d = tx.p2wpkh_lithium_sighash(0, PKH, SPEND["spent_output"]["amount_sat"], 1)
    assert d.hex() == SPEND["sighash_msg_signed_by_mldsa"]
    with pytest.raises(btq_kit.BtqError.Sighash):
        tx.p2wpkh_lithium_sighash(5, PKH, 1, 1)
    with pytest.raises(btq_kit.BtqError.InvalidArgument):
        tx.p2wpkh_lithium_sighash(0, b"short", 1, 1)


# ---- addresses ----

def test_addresses_every_network_vector():
    for net, addrs in TXV["addresses"].items():
        for label, a in addrs.items():
            v = btq_kit.validate_address(a, net)
            assert v.is_valid, (net, label, v.error)
            spk = btq_kit.address_to_script(a, net)
            assert v.script_pubkey == spk.hex()
            assert net in btq_kit.address_networks(a)


def test_validate_address_like_the_node():
    j = json.loads(btq_kit.validate_address_json(MAIN_ADDR, "main"))
    assert j["isvalid"] is True and j["iswitness"] is True and j["isscript"] is False
    assert j["scriptPubKey"] == "00144006068b71b291a07284b6fd3b5ba5794d7b1568"
    bad = json.loads(btq_kit.validate_address_json(MAIN_ADDR[:-1] + "9", "main"))
    assert bad == {"isvalid": False, "error": bad["error"]} and bad["error"]
    wrong_net = btq_kit.validate_address(MAIN_ADDR, "test")
    assert not wrong_net.is_valid and "not test" in wrong_net.error


def test_address_errors():
    with pytest.raises(btq_kit.BtqError.Address):
        btq_kit.address_to_script("nope", "main")
    with pytest.raises(btq_kit.BtqError.InvalidArgument):
        btq_kit.validate_address(MAIN_ADDR, "moon")
    with pytest.raises(btq_kit.BtqError.Address):
        btq_kit.script_to_address(b"\x6a\x01\x00", "main")
    assert btq_kit.script_to_address(bytes.fromhex("00144006068b71b291a07284b6fd3b5ba5794d7b1568"), "main") == MAIN_ADDR


# ---- Lithium ----

def test_lithium_keys_sign_verify():
    k = btq_kit.LithiumKeypair.from_seed(SEED)
    assert k.public_key().hex() == TXV["key"]["pubkey"]
    assert k.pubkey_hash() == PKH
    assert k.p2wpkh_address("main") == MAIN_ADDR
    sig = k.sign(b"hello")
    assert len(sig) == 2420
    assert btq_kit.lithium_verify(k.public_key(), b"hello", sig)
    assert not btq_kit.lithium_verify(k.public_key(), b"hellO", sig)
    assert not btq_kit.lithium_verify(b"", b"hello", sig)
    node = k.to_node_keypair()
    assert len(node) == 3872
    assert btq_kit.LithiumKeypair.from_node_keypair(node).public_key() == k.public_key()
    # the node's own signature of the spend verifies
    sig_node = bytes.fromhex(SPEND["mldsa44_signature_rnd0_ctx_empty"])
    assert btq_kit.lithium_verify(k.public_key(), bytes.fromhex(SPEND["sighash_msg_signed_by_mldsa"]), sig_node)


def test_lithium_bad_keys():
    with pytest.raises(btq_kit.BtqError.InvalidArgument):
        btq_kit.LithiumKeypair.from_seed(b"\x00" * 31)
    with pytest.raises(btq_kit.BtqError.Key) as e:
        btq_kit.LithiumKeypair.from_node_keypair(b"\x00" * 100)
    assert "3872" in e.value.message
    node = bytearray(btq_kit.LithiumKeypair.from_seed(SEED).to_node_keypair())
    node[-1] ^= 1
    with pytest.raises(btq_kit.BtqError.Key):
        btq_kit.LithiumKeypair.from_node_keypair(bytes(node))


# ---- Stratum ----

def drain(srv):
    events, sent = [], b""
    while (e := srv.poll_event()) is not None:
        events.append(json.loads(e))
    while (t := srv.poll_transmit()) is not None:
        sent += t.data
    return events, sent


def test_stratum_session():
    srv = btq_kit.StratumServer()
    now = 1000
    s = srv.connect(now, "192.0.2.7")
    srv.receive(now + 1, s, b'{"id":1,"method":"mining.subscribe","params":["cgminer/4.11"]}\n'
                         b'{"id":2,"method":"mining.authorize","params":["miner.rig","x"]}\n')
    events, sent = drain(srv)
    assert [e["type"] for e in events] == ["authorize"]
    assert events[0]["username"] == "miner.rig"
    srv.respond(now + 2, events[0]["token"], 0)
    with pytest.raises(btq_kit.BtqError.Stratum):
        srv.respond(now + 2, events[0]["token"], 0)
    with pytest.raises(btq_kit.BtqError.InvalidArgument):
        srv.respond(now + 2, 1, 99)
    # a job from the pool reaches the miner
    pool = btq_kit.Pool(btq_kit.LithiumKeypair.from_seed(SEED).p2wpkh_address("regtest"), "regtest")
    job = json.loads(pool.add_template(GBT))
    srv.broadcast_job(json.dumps(job["stratum_job"]))
    _, sent2 = drain(srv)
    assert b'"mining.set_difficulty"' in sent + sent2 or b"mining.notify" in sent + sent2
    assert b"mining.notify" in sent2
    assert srv.poll_timeout() is not None
    srv.timeout(now + 3)
    assert srv.session_count() == 1
    assert srv.close(now + 4, s) is True
    assert srv.close(now + 4, s) is False
    assert srv.session_count() == 0
    with pytest.raises(btq_kit.BtqError.Stratum):
        srv.receive(now + 5, s, b"x\n")
    with pytest.raises(btq_kit.BtqError.InvalidArgument):
        srv.connect(now, "not-an-ip")
    with pytest.raises(btq_kit.BtqError.InvalidArgument):
        srv.broadcast_job("{}")


def test_stratum_junk_disconnects():
    srv = btq_kit.StratumServer()
    s = srv.connect(0, "198.51.100.1")
    srv.receive(1, s, b"x" * 20000)
    events, _ = drain(srv)
    assert any(e["type"] == "disconnect" and e["session"] == s for e in events)


# ---- pool ----

def test_pool_job_and_shares():
    addr = btq_kit.LithiumKeypair.from_seed(SEED).p2wpkh_address("regtest")
    pool = btq_kit.Pool(addr, "regtest")
    job = json.loads(pool.add_template(GBT))
    assert job["height"] == 349 and len(job["notify"]) == 9
    ntime = "%08x" % json.loads(GBT)["curtime"]
    r = json.loads(pool.validate_share("m.1", "00000001", 1e-6, 0, "ffff", "00000002", ntime, "00000000", None, 1795508800))
    assert r["accepted"] is False and r["code"] == 21
    accepted = None
    for nonce in range(64):
        r = json.loads(pool.validate_share("m.1", "00000001", 1e-6, 0, job["job_id"], "00000002", ntime, "%08x" % nonce, None, 1795508800))
        if r["accepted"]:
            accepted = (nonce, r)
            break
    assert accepted is not None
    nonce, r = accepted
    if r["is_block"]:
        blk = btq_kit.Block.decode(bytes.fromhex(r["block_hex"]))
        assert blk.block_hash() == r["hash"] and blk.bip34_height() == 349
    dup = json.loads(pool.validate_share("m.1", "00000001", 1e-6, 0, job["job_id"], "00000002", ntime, "%08x" % nonce, None, 1795508800))
    assert dup["accepted"] is False and dup["code"] == 22 and dup["miner_fault"] is True
    bad_time = json.loads(pool.validate_share("m.1", "00000001", 1e-6, 0, job["job_id"], "00000002", "00000001", "00000000", None, 1795508800))
    assert bad_time["accepted"] is False and "ntime" in bad_time["error"]
    with pytest.raises(btq_kit.BtqError.Decode):
        pool.validate_share("m.1", "zz", 1e-6, 0, job["job_id"], "00000002", ntime, "00000000", None, 1795508800)
    with pytest.raises(btq_kit.BtqError.InvalidArgument):
        pool.validate_share("m.1", "00000001", -1.0, 0, job["job_id"], "00000002", ntime, "00000000", None, 1795508800)


def test_pool_bad_input():
    with pytest.raises(btq_kit.BtqError.Address):
        btq_kit.Pool("bad", "regtest")
    pool = btq_kit.Pool(btq_kit.LithiumKeypair.from_seed(SEED).p2wpkh_address("regtest"), "regtest")
    with pytest.raises(btq_kit.BtqError.Pool):
        pool.add_template("{}")
    with pytest.raises(btq_kit.BtqError.Pool):
        pool.add_template("not json")


# ---- payout ----

def listunspent(n, spk="00144006068b71b291a07284b6fd3b5ba5794d7b1568"):
    return json.dumps([{"txid": "%064x" % (i + 1), "vout": i % 3, "scriptPubKey": spk,
                        "amount": "0.5", "confirmations": 150} for i in range(n)])


def test_consolidation_signs_valid_transactions():
    key = btq_kit.LithiumKeypair.from_seed(SEED)
    dest = key.p2wpkh_address("regtest")
    out = json.loads(btq_kit.consolidate(listunspent(95), key, dest, "regtest", 1))
    assert [t["inputs"] for t in out["txs"]] == [90, 5] or sum(t["inputs"] for t in out["txs"]) == 95
    for t in out["txs"]:
        tx = btq_kit.Tx.from_hex(t["hex"])
        assert tx.txid() == t["txid"] and tx.weight() <= 400000
        # every input's signature verifies against the BIP143 P2WPKH-Lithium sighash
        info = tx.info()
        for i, inp in enumerate(info.inputs):
            sig, pk = (bytes.fromhex(w) for w in inp.witness)
            msg = tx.p2wpkh_lithium_sighash(i, PKH, 50_000_000, 1)
            assert btq_kit.lithium_verify(pk, msg, sig[:-1])


def test_consolidation_bad_input():
    key = btq_kit.LithiumKeypair.from_seed(SEED)
    dest = key.p2wpkh_address("regtest")
    with pytest.raises(btq_kit.BtqError.Payout):
        btq_kit.consolidate("[{]", key, dest, "regtest", 1)
    with pytest.raises(btq_kit.BtqError.Address):
        btq_kit.consolidate(listunspent(3), key, "bad", "regtest", 1)
    with pytest.raises(btq_kit.BtqError.Payout):
        btq_kit.consolidate(listunspent(3), key, dest, "regtest", 0)
    other = btq_kit.LithiumKeypair.from_seed(b"\x01" * 32)
    out = json.loads(btq_kit.consolidate(listunspent(3), other, other.p2wpkh_address("regtest"), "regtest", 1))
    assert out["txs"] == [] and len(out["rejected"]) == 3


# ---- index ----

def test_index_read_only_queries(tmp_path):
    idx = btq_kit.IndexReader.open(str(tmp_path / "index.redb"))
    assert json.loads(idx.tip_json()) is None
    b = json.loads(idx.balance_json(MAIN_ADDR, "main"))
    assert b["balance"] == 0 and b["chain_stats"]["tx_count"] == 0
    assert json.loads(idx.history_json(MAIN_ADDR, "main", 10)) == []
    assert json.loads(idx.utxos_json(MAIN_ADDR, "main", 10)) == []
    with pytest.raises(btq_kit.BtqError.Address):
        idx.balance_json("bad", "main")
    with pytest.raises(btq_kit.BtqError.Index):
        btq_kit.IndexReader.open(str(tmp_path / "missing" / "x.redb"))


# ---- large bytes and overhead figures (printed with -s) ----

def test_64mb_bytes_and_overhead():
    big = bytes(64 * 1024 * 1024)
    t0 = time.perf_counter()
    assert btq_kit.bytes_len(big) == len(big)
    t_len = time.perf_counter() - t0
    t0 = time.perf_counter()
    with pytest.raises(btq_kit.BtqError.Decode):
        btq_kit.Block.decode(big)
    t_block = time.perf_counter() - t0
    n = 20000
    small = b"x" * 32
    t0 = time.perf_counter()
    for _ in range(n):
        btq_kit.bytes_len(small)
    t_call = (time.perf_counter() - t0) / n
    pool = btq_kit.Pool(btq_kit.LithiumKeypair.from_seed(SEED).p2wpkh_address("regtest"), "regtest")
    job = json.loads(pool.add_template(GBT))
    ntime = "%08x" % json.loads(GBT)["curtime"]
    m = 5000
    t0 = time.perf_counter()
    for i in range(m):
        pool.validate_share("m.1", "00000001", 1e-6, 0, job["job_id"], "00000003", ntime, "%08x" % (i + 1000), None, 1795508800)
    t_share = (time.perf_counter() - t0) / m
    print(f"\nPython: bytes_len(64 MiB) {t_len * 1e3:.2f} ms; Block.decode(64 MiB zeros, error) {t_block * 1e3:.2f} ms; "
          f"trivial call {t_call * 1e6:.2f} us; validate_share {t_share * 1e6:.2f} us")
    assert t_len < 1.0
