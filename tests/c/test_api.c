/*
 * pastry.h without an overlay: versions, result codes, ids, addresses, the configuration
 * builder, the logger, and every error path (NULL arguments, bad hex, bad addresses, small
 * buffers, payload over the limit, a busy port, a join nobody answers, wrong modes, calls
 * after the runtime stopped).
 */
#include "harness.h"

static void test_versions(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", PASTRY_VERSION_MAJOR, PASTRY_VERSION_MINOR,
             PASTRY_VERSION_PATCH);
    CHECK(strcmp(pastry_version(), want) == 0);
    CHECK(pastry_abi_version() == PASTRY_ABI_VERSION);
}

static void test_result_codes(void) {
    uint32_t code;
    CHECK(strcmp(pastry_result_str(PASTRY_OK), "ok") == 0);
    for (code = 0; code <= PASTRY_ERR_NOT_STARTED; code++) {
        const char *s = pastry_result_str(code);
        CHECK(s != NULL && s[0] != '\0');
    }
    CHECK(strcmp(pastry_result_str(100000), "unknown result code") == 0);
    /* Fixed numbers. */
    CHECK(PASTRY_NONE == 1 && PASTRY_ERR_NULL_ARGUMENT == 2 && PASTRY_ERR_IN_CALLBACK == 20);
}

static void test_ids(void) {
    pastry_id id, back, untouched;
    char hex[PASTRY_ID_HEX_BUF], small[PASTRY_ID_HEX_BUF - 1];
    CHECK_OK(pastry_id_from_hex("0123456789ABCDEF0123456789abcdef", &id));
    CHECK(id.bytes[0] == 0x01 && id.bytes[7] == 0xef && id.bytes[15] == 0xef);
    CHECK_OK(pastry_id_to_hex(&id, hex, sizeof hex));
    CHECK(strcmp(hex, "0123456789abcdef0123456789abcdef") == 0);
    CHECK_OK(pastry_id_from_hex("0x0123456789abcdef0123456789abcdef", &back));
    CHECK(id_eq(&id, &back));

    memset(&untouched, 0x5a, sizeof untouched);
    back = untouched;
    CHECK_RC(pastry_id_from_hex("0123", &back), PASTRY_ERR_BAD_HEX);
    CHECK_RC(pastry_id_from_hex("0123456789abcdef0123456789abcdeg", &back), PASTRY_ERR_BAD_HEX);
    CHECK_RC(pastry_id_from_hex("0123456789abcdef0123456789abcdef0", &back), PASTRY_ERR_BAD_HEX);
    CHECK_RC(pastry_id_from_hex("", &back), PASTRY_ERR_BAD_HEX);
    CHECK_RC(pastry_id_from_hex(NULL, &back), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_id_from_hex("0123456789abcdef0123456789abcdef", NULL),
             PASTRY_ERR_NULL_ARGUMENT);
    CHECK(id_eq(&back, &untouched)); /* out-params are written only on success */

    memset(small, 'x', sizeof small);
    CHECK_RC(pastry_id_to_hex(&id, small, sizeof small), PASTRY_ERR_BUFFER_TOO_SMALL);
    CHECK(small[0] == 'x');
    CHECK_RC(pastry_id_to_hex(NULL, hex, sizeof hex), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_id_to_hex(&id, NULL, 33), PASTRY_ERR_NULL_ARGUMENT);
}

static void test_addrs(void) {
    pastry_addr a;
    char text[PASTRY_ADDR_STR_BUF];
    CHECK_OK(pastry_addr_parse("127.0.0.1:4000", &a));
    CHECK(a.family == PASTRY_AF_INET && a.port == 4000 && a.ip[0] == 127 && a.ip[3] == 1);
    CHECK_OK(pastry_addr_to_str(&a, text, sizeof text));
    CHECK(strcmp(text, "127.0.0.1:4000") == 0);
    CHECK_OK(pastry_addr_parse("[::1]:9", &a));
    CHECK(a.family == PASTRY_AF_INET6 && a.port == 9 && a.ip[15] == 1);
    CHECK_OK(pastry_addr_to_str(&a, text, sizeof text));
    CHECK(strcmp(text, "[::1]:9") == 0);
    CHECK_RC(pastry_addr_parse("localhost:80", &a), PASTRY_ERR_BAD_ADDRESS);
    CHECK_RC(pastry_addr_parse("1.2.3.4", &a), PASTRY_ERR_BAD_ADDRESS);
    CHECK_RC(pastry_addr_parse(NULL, &a), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_addr_to_str(&a, text, 4), PASTRY_ERR_BUFFER_TOO_SMALL);
    a.family = 5;
    CHECK_RC(pastry_addr_to_str(&a, text, sizeof text), PASTRY_ERR_BAD_ADDRESS);
}

static void test_config(void) {
    pastry_config *cfg = NULL;
    pastry_id id = id_from_u64s(1, 2);
    CHECK_OK(pastry_config_new(&cfg));
    CHECK(cfg != NULL);
    CHECK_OK(pastry_config_set_bind(cfg, "127.0.0.1:0"));
    CHECK_RC(pastry_config_set_bind(cfg, "not an address"), PASTRY_ERR_BAD_ADDRESS);
    CHECK_OK(pastry_config_set_id(cfg, &id));
    CHECK_OK(pastry_config_set_id(cfg, NULL));
    CHECK_OK(pastry_config_set_digit_bits(cfg, 2));
    CHECK_RC(pastry_config_set_digit_bits(cfg, 3), PASTRY_ERR_INVALID_CONFIG);
    CHECK_OK(pastry_config_set_leaf_set_size(cfg, 8));
    CHECK_RC(pastry_config_set_leaf_set_size(cfg, 9), PASTRY_ERR_INVALID_CONFIG);
    CHECK_RC(pastry_config_set_leaf_set_size(cfg, 66), PASTRY_ERR_INVALID_CONFIG);
    CHECK_OK(pastry_config_set_neighborhood_size(cfg, 0));
    CHECK_RC(pastry_config_set_neighborhood_size(cfg, 257), PASTRY_ERR_INVALID_CONFIG);
    CHECK_OK(pastry_config_set_network(cfg, 42));
    CHECK_OK(pastry_config_set_max_payload(cfg, PASTRY_MAX_PAYLOAD_LIMIT));
    CHECK_RC(pastry_config_set_max_payload(cfg, PASTRY_MAX_PAYLOAD_LIMIT + 1),
             PASTRY_ERR_INVALID_CONFIG);
    CHECK_OK(pastry_config_set_seed(cfg, 99));
    CHECK_OK(pastry_config_set_leaf_probe_period_ms(cfg, 500));
    CHECK_RC(pastry_config_set_leaf_probe_period_ms(cfg, 0), PASTRY_ERR_INVALID_CONFIG);
    CHECK_OK(pastry_config_set_rt_maintenance_period_ms(cfg, 1000));
    CHECK_OK(pastry_config_set_join_timeout_ms(cfg, 100, 3));
    CHECK_RC(pastry_config_set_join_timeout_ms(cfg, 100, 0), PASTRY_ERR_INVALID_CONFIG);
    CHECK_OK(pastry_config_set_retransmit(cfg, 200, 20, 2000, 4));
    CHECK_RC(pastry_config_set_retransmit(cfg, 200, 3000, 2000, 4), PASTRY_ERR_INVALID_CONFIG);
    CHECK_RC(pastry_config_set_network(NULL, 1), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_config_new(NULL), PASTRY_ERR_NULL_ARGUMENT);
    pastry_config_free(cfg);
}

/* ---- the logger ---- */

typedef struct {
    pthread_mutex_t lock;
    int messages;
    int created;
    int drops;
    uint32_t nested;
} log_state;

static void on_log(void *ud, uint32_t level, const char *msg) {
    log_state *s = (log_state *)ud;
    pthread_mutex_lock(&s->lock);
    s->messages++;
    if (level == PASTRY_LOG_INFO && strstr(msg, "created") != NULL) s->created++;
    /* Replacing the logger from inside it is refused. */
    s->nested = (uint32_t)pastry_set_logger(NULL);
    pthread_mutex_unlock(&s->lock);
}

static void on_log_drop(void *ud) {
    ((log_state *)ud)->drops++;
}

/* ---- callbacks' drop on failure ---- */

static int failed_node_drops;
static void count_failed_drop(void *ud) {
    (void)ud;
    failed_node_drops++;
}

static void test_null_arguments(void) {
    pastry_id id = id_from_u64s(7, 7);
    pastry_addr a;
    pastry_peer peers[4];
    size_t count = 4, len = 0;
    uint8_t buf[16];
    pastry_event ev;
    pastry_stats st;
    pastry_phase ph;
    uint64_t t;
    char text[64];
    memset(&a, 0, sizeof a);
    CHECK_RC(pastry_runtime_new(NULL), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_new(NULL, NULL, NULL, NULL), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_new_driven(NULL, NULL, NULL), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_start(NULL), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_start_join(NULL, &a, 1), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_join(NULL, &a, 1, 10), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_wait_joined(NULL, 10), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_phase(NULL, &ph), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_shutdown(NULL, 10), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_route(NULL, &id, buf, 1, NULL), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_id(NULL, &id), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_addr(NULL, &a), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_addr_str(NULL, text, sizeof text), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_local_lookup(NULL, &id, false, peers, &count), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_neighbor_set(NULL, peers, &count), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_replica_set(NULL, &id, 2, peers, &count), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_range(NULL, &id, 0, &id, &id), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_stats(NULL, &st, sizeof st), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_handle_datagram(NULL, &a, buf, 1, 0), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_handle_timeout(NULL, 0), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_poll_transmit(NULL, buf, sizeof buf, &len, &a), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_poll_timeout(NULL, &t), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_poll_event(NULL, &ev, buf, sizeof buf), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_forward_set_payload(NULL, buf, 1), PASTRY_ERR_NULL_ARGUMENT);
    /* _free(NULL) is fine. */
    pastry_config_free(NULL);
    CHECK_OK(pastry_node_free(NULL));
    CHECK_OK(pastry_runtime_free(NULL));
    CHECK_OK(pastry_set_logger(NULL));
}

static void test_runtime_errors(void) {
    pastry_runtime *rt = NULL;
    pastry_config *cfg = NULL;
    pastry_node *a = NULL, *b = NULL, *c = NULL, *kept = NULL;
    pastry_addr addr, nobody;
    pastry_callbacks cb;
    pastry_peer hint, peers[4];
    pastry_id key = id_from_u64s(0x1234, 0x5678);
    pastry_stats st;
    pastry_phase ph;
    char text[PASTRY_ADDR_STR_BUF];
    size_t len = 0, count = 4;
    uint8_t big[2048];
    uint64_t t;
    log_state logs;

    memset(&logs, 0, sizeof logs);
    pthread_mutex_init(&logs.lock, NULL);
    {
        pastry_logger lg;
        memset(&lg, 0, sizeof lg);
        lg.userdata = &logs;
        lg.log = on_log;
        lg.drop = on_log_drop;
        lg.max_level = PASTRY_LOG_DEBUG;
        CHECK_OK(pastry_set_logger(&lg));
    }

    CHECK_OK(pastry_runtime_new(&rt));
    CHECK_OK(pastry_config_new(&cfg));
    CHECK_OK(pastry_config_set_max_payload(cfg, 1024));
    CHECK_OK(pastry_config_set_join_timeout_ms(cfg, 40, 2));
    CHECK_OK(pastry_node_new(rt, cfg, NULL, &a));
    CHECK_OK(pastry_node_addr(a, &addr));
    CHECK(addr.family == PASTRY_AF_INET && addr.port != 0);
    CHECK_OK(pastry_node_addr_str(a, text, sizeof text));
    CHECK(strncmp(text, "127.0.0.1:", 10) == 0);
    CHECK_RC(pastry_node_addr_str(a, text, 5), PASTRY_ERR_BUFFER_TOO_SMALL);
    CHECK_OK(pastry_node_phase(a, &ph));
    CHECK(ph == PASTRY_PHASE_IDLE);

    /* Before start: no routing, no waiting. */
    CHECK_RC(pastry_route(a, &key, (const uint8_t *)"x", 1, NULL), PASTRY_ERR_NOT_ACTIVE);
    CHECK_RC(pastry_node_wait_joined(a, 10), PASTRY_ERR_NOT_STARTED);
    CHECK_RC(pastry_node_join(a, &addr, 0, 10), PASTRY_ERR_NO_BOOTSTRAP);
    CHECK_RC(pastry_node_join(a, NULL, 1, 10), PASTRY_ERR_NULL_ARGUMENT);

    /* Caller-driven entry points on a runtime node. */
    CHECK_RC(pastry_node_handle_timeout(a, 0), PASTRY_ERR_WRONG_MODE);
    CHECK_RC(pastry_node_poll_timeout(a, &t), PASTRY_ERR_WRONG_MODE);
    CHECK_RC(pastry_node_poll_transmit(a, big, sizeof big, &len, &addr), PASTRY_ERR_WRONG_MODE);

    CHECK_OK(pastry_node_start(a));
    CHECK_OK(pastry_node_wait_joined(a, 5000));
    CHECK_RC(pastry_node_start(a), PASTRY_ERR_ALREADY_STARTED);

    /* route: payload limit, destination, hint address. */
    memset(big, 7, sizeof big);
    CHECK_RC(pastry_route(a, &key, big, 1025, NULL), PASTRY_ERR_PAYLOAD_TOO_LARGE);
    CHECK_OK(pastry_route(a, &key, big, 1024, NULL));
    CHECK_OK(pastry_route(a, &key, NULL, 0, NULL));
    CHECK_RC(pastry_route(a, NULL, big, 1, NULL), PASTRY_ERR_NO_DESTINATION);
    CHECK_RC(pastry_route(a, &key, NULL, 5, NULL), PASTRY_ERR_NULL_ARGUMENT);
    memset(&hint, 0, sizeof hint);
    hint.addr.family = 9;
    CHECK_RC(pastry_route(a, NULL, big, 1, &hint), PASTRY_ERR_BAD_ADDRESS);

    /* Queries: capacity and NULL checks. */
    CHECK_RC(pastry_node_neighbor_set(a, NULL, &count), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_RC(pastry_node_neighbor_set(a, peers, NULL), PASTRY_ERR_NULL_ARGUMENT);
    count = 0;
    CHECK_OK(pastry_node_neighbor_set(a, NULL, &count));
    CHECK(count == 0);
    CHECK_RC(pastry_node_stats(a, &st, 0), PASTRY_ERR_INVALID_ARGUMENT);
    CHECK_OK(pastry_node_stats(a, &st, sizeof st));

    /* The same port twice: in use. The failed node's callbacks are dropped at once. */
    CHECK_OK(pastry_addr_to_str(&addr, text, sizeof text));
    CHECK_OK(pastry_config_set_bind(cfg, text));
    memset(&cb, 0, sizeof cb);
    cb.drop = count_failed_drop;
    CHECK_RC(pastry_node_new(rt, cfg, &cb, &b), PASTRY_ERR_ADDR_IN_USE);
    CHECK(b == NULL);
    CHECK(failed_node_drops == 1);
    CHECK_RC(pastry_node_new(NULL, cfg, &cb, &b), PASTRY_ERR_NULL_ARGUMENT);
    CHECK(failed_node_drops == 2);

    /* A join nobody answers fails after its attempts; the node may try again. */
    CHECK_OK(pastry_config_set_bind(cfg, "127.0.0.1:0"));
    CHECK_OK(pastry_node_new(rt, cfg, NULL, &c));
    CHECK_OK(pastry_addr_parse("127.0.0.1:9", &nobody));
    CHECK_RC(pastry_node_join(c, &nobody, 1, 10000), PASTRY_ERR_JOIN_FAILED);
    CHECK_OK(pastry_node_phase(c, &ph));
    CHECK(ph == PASTRY_PHASE_IDLE);
    CHECK_OK(pastry_node_join(c, &addr, 1, 10000));

    /* Graceful shutdown, then calls on the handle fail with STOPPED. */
    CHECK_OK(pastry_node_shutdown(c, 5000));
    CHECK_RC(pastry_node_shutdown(c, 5000), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_route(c, &key, big, 1, NULL), PASTRY_ERR_STOPPED);
    CHECK_OK(pastry_node_free(c));

    /* A node outliving its runtime. */
    CHECK_OK(pastry_config_set_bind(cfg, "127.0.0.1:0"));
    CHECK_OK(pastry_node_new(rt, cfg, NULL, &kept));
    CHECK_OK(pastry_runtime_free(rt));
    CHECK_RC(pastry_node_start(kept), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_route(a, &key, big, 1, NULL), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_node_stats(a, &st, sizeof st), PASTRY_ERR_STOPPED);
    CHECK_OK(pastry_node_free(kept));
    CHECK_OK(pastry_node_free(a));
    pastry_config_free(cfg);

    /* The logger saw the nodes being created; replacing it from inside was refused. */
    pthread_mutex_lock(&logs.lock);
    CHECK(logs.messages > 0);
    CHECK(logs.created >= 3);
    pthread_mutex_unlock(&logs.lock);
    CHECK(logs.nested == PASTRY_ERR_IN_CALLBACK);
    CHECK(logs.drops == 0);
    CHECK_OK(pastry_set_logger(NULL));
    CHECK(logs.drops == 1);
    CHECK_OK(pastry_set_logger(NULL));
    CHECK(logs.drops == 1);
    pthread_mutex_destroy(&logs.lock);
}

int main(void) {
    watchdog(120);
    test_versions();
    test_result_codes();
    test_ids();
    test_addrs();
    test_config();
    test_null_arguments();
    test_runtime_errors();
    printf("test_api: all checks passed\n");
    return 0;
}
