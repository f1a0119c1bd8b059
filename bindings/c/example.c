/* btq-kit C ABI example and test: every area, success and error paths, everything freed.
 *
 * Usage: example TX_HEX_FILE GBT_JSON_FILE INDEX_DB_PATH
 *   TX_HEX_FILE   the hex of shared/vectors/btq_tx_vectors.json spends.p2wpkh_dilithium_bip143
 *   GBT_JSON_FILE shared/vectors/gbt-empty.json
 *   INDEX_DB_PATH a path for a (new, empty) redb index store
 * Exits non-zero on the first failed check. Prints per-call overhead figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "btq.h"

static int failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
            goto done;                                                           \
        }                                                                        \
    } while (0)

/* Reads the last error into a malloc'd string using the size query. */
static char *last_error(void) {
    size_t need = 0;
    if (btq_last_error_message(NULL, 0, &need) != BTQ_OK) return NULL;
    char *buf = malloc(need);
    if (!buf) return NULL;
    if (btq_last_error_message(buf, need, &need) != BTQ_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void print_error(const char *what, int32_t status) {
    char *msg = last_error();
    printf("  expected error from %s: status %d: %s\n", what, status, msg ? msg : "?");
    free(msg);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) {
        s[n] = 0;
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
    }
    fclose(f);
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copies the string value of "key":"..." from JSON (enough for this example). */
static int json_str(const char *json, const char *key, char *out, size_t len) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (!p) return 0;
    p += strlen(pat);
    const char *q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= len) return 0;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = 0;
    return 1;
}

static const uint8_t SEED[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t PKH[20] = {0x40, 0x06, 0x06, 0x8b, 0x71, 0xb2, 0x91, 0xa0, 0x72, 0x84,
                                0xb6, 0xfd, 0x3b, 0x5b, 0xa5, 0x79, 0x4d, 0x7b, 0x15, 0x68};
static const uint8_t SIGHASH[32] = {0xe5, 0x08, 0xab, 0x47, 0x13, 0x97, 0x5f, 0x02, 0x71, 0x1e, 0xaa,
                                    0xc8, 0x75, 0xb1, 0x04, 0x55, 0x7b, 0x75, 0x6a, 0xdb, 0x95, 0x8c,
                                    0x65, 0x0f, 0x00, 0x7a, 0x06, 0x14, 0xfe, 0x30, 0xa4, 0xeb};

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s TX_HEX_FILE GBT_JSON_FILE INDEX_DB_PATH\n", argv[0]);
        return 2;
    }
    char *tx_hex = read_file(argv[1]);
    char *gbt = read_file(argv[2]);
    BtqBuffer buf = {0};
    BtqTx *tx = NULL;
    BtqKeypair *key = NULL;
    BtqStratumServer *srv = NULL;
    BtqPool *pool = NULL;
    BtqIndex *index = NULL;
    int32_t st;
    CHECK(tx_hex && gbt);

    /* ---- version ---- */
    uint32_t abi = 0;
    CHECK(btq_abi_version(&abi) == BTQ_OK && abi == BTQ_ABI_VERSION);
    CHECK(btq_version(&buf) == BTQ_OK && buf.len > 0 && buf.data[buf.len] == 0);
    printf("btq-kit %s, ABI %u\n", (const char *)buf.data, abi);
    btq_buffer_free(&buf);
    CHECK(buf.data == NULL);
    btq_buffer_free(&buf); /* double free of a reset buffer is a no-op */
    btq_buffer_free(NULL);

    /* ---- transactions: errors ---- */
    st = btq_tx_decode_hex("zz", &tx);
    CHECK(st == BTQ_ERR_DECODE && tx == NULL);
    print_error("btq_tx_decode_hex(\"zz\")", st);
    {
        /* the last error survives a too-small read and can be re-read with the size query */
        char tiny[4];
        size_t need = 0;
        CHECK(btq_last_error_message(tiny, sizeof tiny, &need) == BTQ_ERR_BUFFER_TOO_SMALL);
        CHECK(need > sizeof tiny);
        char *msg = last_error();
        CHECK(msg && strstr(msg, "decode") != NULL);
        free(msg);
    }
    static const uint8_t junk[3] = {1, 2, 3};
    st = btq_tx_decode(junk, sizeof junk, &tx);
    CHECK(st == BTQ_ERR_DECODE);
    print_error("btq_tx_decode(3 bytes)", st);
    st = btq_tx_decode(NULL, 5, &tx);
    CHECK(st == BTQ_ERR_INVALID_ARGUMENT);
    print_error("btq_tx_decode(NULL, 5)", st);

    /* ---- transactions: success ---- */
    CHECK(btq_tx_decode_hex(tx_hex, &tx) == BTQ_OK && tx != NULL);
    {
        char txid[65];
        size_t need = 0;
        char small[10];
        CHECK(btq_tx_txid(tx, small, sizeof small, &need) == BTQ_ERR_BUFFER_TOO_SMALL && need == 65);
        CHECK(btq_tx_txid(tx, NULL, 0, &need) == BTQ_OK && need == 65);
        CHECK(btq_tx_txid(tx, txid, sizeof txid, &need) == BTQ_OK);
        CHECK(strcmp(txid, "e30932fafdb3e3dab09b692f3bc86d16be3eadda11050f7b957548d7507e9e1e") == 0);
        CHECK(btq_tx_wtxid(tx, txid, sizeof txid, NULL) == BTQ_OK);
        CHECK(strcmp(txid, "1808e291e9a1ffce1f5d0f57142c80a373ebbed573f567756c27e04ea65c928a") == 0);
        uint64_t w = 0, vs = 0, nin = 0, nout = 0, value = 0;
        CHECK(btq_tx_weight(tx, &w) == BTQ_OK && w == 5054);
        CHECK(btq_tx_vsize(tx, &vs) == BTQ_OK && vs == 316);
        CHECK(btq_tx_input_count(tx, &nin) == BTQ_OK && nin == 1);
        CHECK(btq_tx_output_count(tx, &nout) == BTQ_OK && nout == 1);
        CHECK(btq_tx_output_value(tx, 0, &value) == BTQ_OK && value > 0);
        CHECK(btq_tx_output_value(tx, 5, &value) == BTQ_ERR_INVALID_ARGUMENT);
        printf("tx wtxid %s weight %llu vsize %llu\n", txid, (unsigned long long)w, (unsigned long long)vs);
        CHECK(btq_tx_to_json(tx, "main", &buf) == BTQ_OK);
        CHECK(strstr((const char *)buf.data, "qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58") != NULL);
        btq_buffer_free(&buf);
        CHECK(btq_tx_to_json(tx, "nonet", &buf) == BTQ_ERR_INVALID_ARGUMENT);
        uint8_t digest[32];
        CHECK(btq_tx_sighash_p2wpkh_lithium(tx, 0, PKH, 500000000, 1, digest) == BTQ_OK);
        CHECK(memcmp(digest, SIGHASH, 32) == 0);
        st = btq_tx_sighash_p2wpkh_lithium(tx, 7, PKH, 500000000, 1, digest);
        CHECK(st == BTQ_ERR_SIGHASH);
        print_error("sighash of input 7", st);
    }

    /* ---- addresses ---- */
    {
        int32_t valid = -1;
        CHECK(btq_address_validate("qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58", "main", &buf) == BTQ_OK);
        CHECK(strstr((const char *)buf.data, "\"isvalid\":true") != NULL);
        btq_buffer_free(&buf);
        CHECK(btq_address_validate("qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q59", "main", &buf) == BTQ_OK);
        CHECK(strstr((const char *)buf.data, "\"isvalid\":false") != NULL);
        printf("validateaddress(bad) = %s\n", (const char *)buf.data);
        btq_buffer_free(&buf);
        CHECK(btq_address_is_valid("tbtq1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tghpepam", "main", &valid) == BTQ_OK);
        CHECK(valid == 0);
        print_error("is_valid(testnet address on main)", 0);
        CHECK(btq_address_to_script("XgXNJCDcXRWbH922XE6VSpBHSJ6EqBE2Tw", "main", &buf) == BTQ_OK);
        CHECK(buf.len == 25 && buf.data[24] == 0xbb);
        BtqBuffer addr = {0};
        CHECK(btq_address_from_script(buf.data, buf.len, "main", &addr) == BTQ_OK);
        CHECK(strcmp((const char *)addr.data, "XgXNJCDcXRWbH922XE6VSpBHSJ6EqBE2Tw") == 0);
        btq_buffer_free(&addr);
        btq_buffer_free(&buf);
        st = btq_address_to_script("not-an-address", "main", &buf);
        CHECK(st == BTQ_ERR_ADDRESS && buf.data == NULL);
        print_error("address_to_script(bad)", st);
        st = btq_address_validate(NULL, "main", &buf);
        CHECK(st == BTQ_ERR_INVALID_ARGUMENT);
    }

    /* ---- Lithium ---- */
    {
        CHECK(btq_keypair_from_seed(SEED, 31, &key) == BTQ_ERR_INVALID_ARGUMENT && key == NULL);
        st = btq_keypair_from_node(SEED, 32, &key);
        CHECK(st == BTQ_ERR_KEY && key == NULL);
        print_error("keypair_from_node(32 bytes)", st);
        CHECK(btq_keypair_from_seed(SEED, 32, &key) == BTQ_OK);
        BtqBuffer pk = {0}, sig = {0};
        CHECK(btq_keypair_public_key(key, &pk) == BTQ_OK && pk.len == 1312);
        CHECK(btq_keypair_sign(key, SIGHASH, 32, &sig) == BTQ_OK && sig.len == 2420);
        int32_t ok = -1;
        CHECK(btq_lithium_verify(pk.data, pk.len, SIGHASH, 32, sig.data, sig.len, &ok) == BTQ_OK && ok == 1);
        CHECK(btq_lithium_verify(pk.data, pk.len, PKH, 20, sig.data, sig.len, &ok) == BTQ_OK && ok == 0);
        btq_buffer_free(&pk);
        btq_buffer_free(&sig);
        CHECK(btq_keypair_address(key, "regtest", &buf) == BTQ_OK);
        printf("key address (regtest) %s\n", (const char *)buf.data);
        btq_buffer_free(&buf);
    }

    /* ---- Stratum ---- */
    {
        uint64_t sess = 0, now = 1000;
        int32_t has = 0, live = 0;
        CHECK(btq_stratum_new(&srv) == BTQ_OK);
        st = btq_stratum_connect(srv, now, "not-an-ip", &sess);
        CHECK(st == BTQ_ERR_INVALID_ARGUMENT);
        CHECK(btq_stratum_connect(srv, now, "192.0.2.7", &sess) == BTQ_OK);
        const char *lines =
            "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"cgminer/4.11\"]}\n"
            "{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"miner.rig\",\"x\"]}\n";
        CHECK(btq_stratum_receive(srv, now + 10, sess, (const uint8_t *)lines, strlen(lines)) == BTQ_OK);
        int events = 0;
        for (;;) {
            CHECK(btq_stratum_poll_event(srv, &has, &buf) == BTQ_OK);
            if (!has) break;
            events++;
            char tok[32];
            printf("event %s\n", (const char *)buf.data);
            const char *t = strstr((const char *)buf.data, "\"token\":");
            if (t) {
                unsigned long long token = strtoull(t + 8, NULL, 10);
                CHECK(btq_stratum_respond(srv, now + 20, token, 0) == BTQ_OK);
                st = btq_stratum_respond(srv, now + 20, token, 0);
                CHECK(st == BTQ_ERR_STRATUM);
                print_error("respond twice", st);
            }
            (void)tok;
            btq_buffer_free(&buf);
        }
        CHECK(events == 1);
        size_t total = 0;
        for (;;) {
            uint64_t to = 0;
            CHECK(btq_stratum_poll_transmit(srv, &has, &to, &buf) == BTQ_OK);
            if (!has) break;
            CHECK(to == sess);
            total += buf.len;
            btq_buffer_free(&buf);
        }
        CHECK(total > 0);
        uint64_t at = 0;
        CHECK(btq_stratum_poll_timeout(srv, &has, &at) == BTQ_OK);
        CHECK(btq_stratum_timeout(srv, now + 30) == BTQ_OK);
        CHECK(btq_stratum_close(srv, now + 40, sess, &live) == BTQ_OK && live == 1);
        CHECK(btq_stratum_close(srv, now + 40, sess, &live) == BTQ_OK && live == 0);
        st = btq_stratum_receive(srv, now + 50, sess, (const uint8_t *)"x\n", 2);
        CHECK(st == BTQ_ERR_STRATUM);
        print_error("receive on closed session", st);
        printf("stratum: %zu bytes sent to the miner\n", total);
    }

    /* ---- pool ---- */
    {
        char addr[128], job_id[32];
        CHECK(btq_keypair_address(key, "regtest", &buf) == BTQ_OK);
        snprintf(addr, sizeof addr, "%s", (const char *)buf.data);
        btq_buffer_free(&buf);
        st = btq_pool_new("bad", "regtest", &pool);
        CHECK(st == BTQ_ERR_ADDRESS && pool == NULL);
        CHECK(btq_pool_new(addr, "regtest", &pool) == BTQ_OK);
        st = btq_pool_add_template(pool, "{\"not\":\"a template\"}", &buf);
        CHECK(st == BTQ_ERR_POOL);
        print_error("add_template(bad)", st);
        CHECK(btq_pool_add_template(pool, gbt, &buf) == BTQ_OK);
        CHECK(json_str((const char *)buf.data, "job_id", job_id, sizeof job_id));
        {
            /* hand the job to the Stratum server */
            const char *sj = strstr((const char *)buf.data, "\"stratum_job\":");
            CHECK(sj != NULL);
            char *job = strdup(sj + strlen("\"stratum_job\":"));
            CHECK(job != NULL);
            job[strlen(job) - 1] = 0; /* drop the outer '}' */
            st = btq_stratum_broadcast_job(srv, job);
            free(job);
            CHECK(st == BTQ_OK);
        }
        btq_buffer_free(&buf);
        CHECK(btq_pool_validate_share(pool, "miner.rig", "00000001", 1e-6, 0, "ffff", "00000002",
                                      "6b054a12", "00000000", NULL, 1795508800, &buf) == BTQ_OK);
        CHECK(strstr((const char *)buf.data, "\"accepted\":false") != NULL);
        printf("share on unknown job: %s\n", (const char *)buf.data);
        btq_buffer_free(&buf);
        int found = 0;
        for (unsigned nonce = 0; nonce < 64 && !found; nonce++) {
            char n[9];
            snprintf(n, sizeof n, "%08x", nonce);
            CHECK(btq_pool_validate_share(pool, "miner.rig", "00000001", 1e-6, 0, job_id, "00000002",
                                          "6b054a12", n, NULL, 1795508800, &buf) == BTQ_OK);
            if (strstr((const char *)buf.data, "\"accepted\":true")) {
                found = 1;
                printf("accepted share: %.120s...\n", (const char *)buf.data);
            }
            btq_buffer_free(&buf);
        }
        CHECK(found);
        st = btq_pool_validate_share(pool, "m", "zz", 1e-6, 0, job_id, "00000002", "6b054a12",
                                     "00000000", NULL, 1795508800, &buf);
        CHECK(st == BTQ_ERR_DECODE);
        print_error("validate_share(extranonce1 zz)", st);

        /* overhead figures (skipped under valgrind: BTQ_BENCH unset) */
        const int N = getenv("BTQ_BENCH") ? 1000000 : 10;
        uint64_t out = 0;
        double t0 = now_s();
        for (int i = 0; i < N; i++) btq_bytes_len(SEED, 32, &out);
        double t1 = now_s();
        printf("C: trivial call (btq_bytes_len): %.1f ns/call\n", (t1 - t0) * 1e9 / N);
        const int M = getenv("BTQ_BENCH") ? 20000 : 10;
        t0 = now_s();
        for (int i = 0; i < M; i++) {
            char n[9];
            snprintf(n, sizeof n, "%08x", (unsigned)(i + 1000));
            btq_pool_validate_share(pool, "miner.rig", "00000001", 1e-6, 0, job_id, "00000003",
                                    "6b054a12", n, NULL, 1795508800, &buf);
            btq_buffer_free(&buf);
        }
        t1 = now_s();
        printf("C: share validation (btq_pool_validate_share, JSON answer): %.2f us/call\n",
               (t1 - t0) * 1e6 / M);
    }

    /* ---- consolidation from listunspent ---- */
    {
        const char *utxos =
            "[{\"txid\":\"f3977e5cd850014df17533154c1f8e6fd57bd3922f2d69f7530ceeca3c1e0542\",\"vout\":0,"
            "\"scriptPubKey\":\"00144006068b71b291a07284b6fd3b5ba5794d7b1568\",\"amount\":5.0,\"confirmations\":200},"
            "{\"txid\":\"f3977e5cd850014df17533154c1f8e6fd57bd3922f2d69f7530ceeca3c1e0542\",\"vout\":1,"
            "\"scriptPubKey\":\"00144006068b71b291a07284b6fd3b5ba5794d7b1568\",\"amount\":1.25,\"confirmations\":150},"
            "{\"txid\":\"e30932fafdb3e3dab09b692f3bc86d16be3eadda11050f7b957548d7507e9e1e\",\"vout\":0,"
            "\"scriptPubKey\":\"00144006068b71b291a07284b6fd3b5ba5794d7b1568\",\"amount\":\"0.5\",\"confirmations\":120}]";
        char dest[128];
        CHECK(btq_keypair_address(key, "regtest", &buf) == BTQ_OK);
        snprintf(dest, sizeof dest, "%s", (const char *)buf.data);
        btq_buffer_free(&buf);
        CHECK(btq_consolidate(utxos, key, dest, "regtest", 1, &buf) == BTQ_OK);
        CHECK(strstr((const char *)buf.data, "\"inputs\":3") != NULL);
        printf("consolidation: %.160s...\n", (const char *)buf.data);
        btq_buffer_free(&buf);
        st = btq_consolidate("[{]", key, dest, "regtest", 1, &buf);
        CHECK(st == BTQ_ERR_PAYOUT);
        print_error("consolidate(bad JSON)", st);
    }

    /* ---- index ---- */
    {
        CHECK(btq_index_open(argv[3], &index) == BTQ_OK);
        CHECK(btq_index_tip(index, &buf) == BTQ_OK && strcmp((const char *)buf.data, "null") == 0);
        btq_buffer_free(&buf);
        CHECK(btq_index_balance(index, "qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58", "main", &buf) == BTQ_OK);
        CHECK(strstr((const char *)buf.data, "\"balance\":0") != NULL);
        btq_buffer_free(&buf);
        CHECK(btq_index_history(index, "qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58", "main", 10, &buf) == BTQ_OK);
        CHECK(strcmp((const char *)buf.data, "[]") == 0);
        btq_buffer_free(&buf);
        CHECK(btq_index_utxos(index, "qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58", "main", 10, &buf) == BTQ_OK);
        btq_buffer_free(&buf);
        st = btq_index_balance(index, "bad", "main", &buf);
        CHECK(st == BTQ_ERR_ADDRESS);
        print_error("index_balance(bad)", st);
        BtqIndex *bad = NULL;
        st = btq_index_open("/nonexistent-dir/x.redb", &bad);
        CHECK(st == BTQ_ERR_INDEX && bad == NULL);
        print_error("index_open(missing dir)", st);
    }

done:
    btq_buffer_free(&buf);
    btq_index_free(index);
    btq_pool_free(pool);
    btq_stratum_free(srv);
    btq_keypair_free(key);
    btq_tx_free(tx);
    btq_tx_free(NULL);
    free(tx_hex);
    free(gbt);
    if (failures) {
        fprintf(stderr, "FAILED\n");
        return 1;
    }
    printf("all C checks passed\n");
    return 0;
}
