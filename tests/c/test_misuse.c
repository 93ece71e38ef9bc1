/*
 * Misuse of the C ABI (issue 9), each of which was undefined behaviour, a hang or a wrong code
 * before: a pastry_forward kept after its callback, pastry_node_handle_timeout(UINT64_MAX),
 * calls on a caller-driven node after its shutdown, the caller-driven clock (_at variants),
 * a runtime node bound to 0.0.0.0, calls after pastry_node_free and a double free, a free
 * racing routes on other threads, pastry_node_abort, the in-flight budget (OVERLOADED), stats
 * from inside deliver, and pastry_id_hash. Run as C11, C++17, under ASan+UBSan and valgrind.
 */
#include "harness.h"

static pastry_forward kept;
static int kept_set;
static uint32_t set_in_call_rc = 99;

static uint32_t keep_forward(void *ud, pastry_node *node, pastry_forward *m) {
    (void)ud;
    (void)node;
    kept = *m;
    kept_set = 1;
    set_in_call_rc = (uint32_t)pastry_forward_set_payload(m, (const uint8_t *)"new", 3);
    return PASTRY_FORWARD_CONTINUE;
}

static pastry_node *driven(const char *bind, const pastry_callbacks *cb) {
    pastry_config *cfg = NULL;
    pastry_node *n = NULL;
    CHECK_OK(pastry_config_new(&cfg));
    CHECK_OK(pastry_config_set_bind(cfg, bind));
    CHECK_OK(pastry_node_new_driven(cfg, cb, &n));
    pastry_config_free(cfg);
    return n;
}

static void kept_forward(void) {
    pastry_callbacks cb;
    pastry_node *n;
    pastry_id key;
    pastry_event ev;
    uint8_t buf[16];
    memset(&cb, 0, sizeof cb);
    cb.forward = keep_forward;
    n = driven("127.0.0.1:42001", &cb);
    CHECK_OK(pastry_node_start_at(n, 0));
    memset(&key, 9, sizeof key);
    CHECK_OK(pastry_route(n, &key, (const uint8_t *)"x", 1, NULL));
    CHECK(kept_set);
    CHECK_RC(set_in_call_rc, PASTRY_OK);
    /* The copy outlived its call: refused, and nothing is read through it. */
    CHECK_RC(pastry_forward_set_payload(&kept, (const uint8_t *)"late", 4),
             PASTRY_ERR_INVALID_ARGUMENT);
    CHECK_OK(pastry_node_poll_event(n, &ev, buf, sizeof buf)); /* joined */
    CHECK_OK(pastry_node_poll_event(n, &ev, buf, sizeof buf));
    CHECK(ev.kind == PASTRY_EVENT_DELIVERED && ev.payload_len == 3);
    CHECK(memcmp(buf, "new", 3) == 0);
    CHECK_OK(pastry_node_free(n));
}

static void end_of_time_and_stopped_codes(void) {
    pastry_node *n = driven("127.0.0.1:42002", NULL);
    pastry_id key;
    pastry_addr boot;
    pastry_phase phase;
    memset(&key, 1, sizeof key);
    CHECK_OK(pastry_addr_parse("127.0.0.1:9", &boot));
    CHECK_OK(pastry_node_start_at(n, 1000));
    /* Used to loop forever in the node's timer heap. */
    CHECK_OK(pastry_node_handle_timeout(n, UINT64_MAX));
    CHECK_OK(pastry_node_shutdown(n, 0));
    CHECK_RC(pastry_route(n, &key, NULL, 0, NULL), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_node_start(n), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_node_start_join(n, &boot, 1), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_node_shutdown(n, 0), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_node_abort(n, 0), PASTRY_ERR_STOPPED);
    CHECK_OK(pastry_node_phase(n, &phase));
    CHECK(phase == PASTRY_PHASE_STOPPED);
    CHECK_OK(pastry_node_free(n));
}

static void driven_clock_origin(void) {
    const uint64_t now = 1000000000000ull; /* a host clock far from 0 */
    pastry_node *n = driven("127.0.0.1:42003", NULL);
    pastry_addr boot;
    uint64_t at = 0, msg_id = 0;
    pastry_id key;
    memset(&key, 2, sizeof key);
    CHECK_OK(pastry_addr_parse("127.0.0.1:9", &boot));
    CHECK_OK(pastry_node_start_join_at(n, &boot, 1, now));
    CHECK_OK(pastry_node_poll_timeout(n, &at));
    CHECK(at > now); /* the join timeout counts from the host's now, not from 0 */
    CHECK_RC(pastry_route_at(n, &key, NULL, 0, NULL, now + 1, &msg_id), PASTRY_ERR_NOT_ACTIVE);
    CHECK_OK(pastry_node_shutdown_at(n, now + 2));
    CHECK_OK(pastry_node_free(n));
}

static void after_free(void) {
    pastry_node *n = driven("127.0.0.1:42004", NULL);
    pastry_id key;
    memset(&key, 3, sizeof key);
    CHECK_OK(pastry_node_free(n));
    CHECK_RC(pastry_route(n, &key, NULL, 0, NULL), PASTRY_ERR_INVALID_ARGUMENT);
    CHECK_RC(pastry_node_start(n), PASTRY_ERR_INVALID_ARGUMENT);
    CHECK_RC(pastry_node_free(n), PASTRY_ERR_INVALID_ARGUMENT);
}

/* ---- runtime nodes ---- */

typedef struct {
    pthread_mutex_t lock;
    int drops, undeliverable, delivered;
    uint32_t stats_rc;
} flags_t;

static flags_t flags = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 99};

static void on_drop(void *ud) {
    flags_t *f = (flags_t *)ud;
    pthread_mutex_lock(&f->lock);
    f->drops++;
    pthread_mutex_unlock(&f->lock);
}

static void on_undeliverable(void *ud, pastry_node *n, const pastry_id *k, uint64_t id,
                             uint32_t reason) {
    flags_t *f = (flags_t *)ud;
    (void)n, (void)k, (void)id, (void)reason;
    pthread_mutex_lock(&f->lock);
    f->undeliverable++;
    pthread_mutex_unlock(&f->lock);
}

static void on_deliver(void *ud, pastry_node *n, const pastry_delivery *m) {
    flags_t *f = (flags_t *)ud;
    pastry_stats s;
    uint32_t rc = (uint32_t)pastry_node_stats(n, &s, sizeof s);
    (void)m;
    pthread_mutex_lock(&f->lock);
    f->stats_rc = rc;
    f->delivered++;
    pthread_mutex_unlock(&f->lock);
}

static int get(int *field) {
    int v;
    pthread_mutex_lock(&flags.lock);
    v = *field;
    pthread_mutex_unlock(&flags.lock);
    return v;
}

static pastry_node *runtime_node(pastry_runtime *rt, const pastry_config *cfg) {
    pastry_callbacks cb;
    pastry_node *n = NULL;
    memset(&cb, 0, sizeof cb);
    cb.userdata = &flags;
    cb.deliver = on_deliver;
    cb.undeliverable = on_undeliverable;
    cb.drop = on_drop;
    CHECK_OK(pastry_node_new(rt, cfg, &cb, &n));
    CHECK_OK(pastry_node_start(n));
    CHECK_OK(pastry_node_wait_joined(n, 5000));
    return n;
}

typedef struct {
    pastry_node *node;
    int bad;
} racer_t;

static void *racer(void *arg) {
    racer_t *r = (racer_t *)arg;
    pastry_id key;
    int i;
    memset(&key, 7, sizeof key);
    for (i = 0; i < 100000; i++) {
        pastry_result rc = pastry_route(r->node, &key, (const uint8_t *)"r", 1, NULL);
        if (rc == PASTRY_ERR_INVALID_ARGUMENT) return NULL; /* freed: refused */
        if (rc != PASTRY_OK && rc != PASTRY_ERR_OVERLOADED && rc != PASTRY_ERR_STOPPED) r->bad++;
    }
    return NULL;
}

static void runtime_misuse(void) {
    pastry_runtime *rt = NULL;
    pastry_config *cfg = NULL;
    pastry_node *a, *b, *n = NULL;
    pastry_id own;
    pastry_peer dead;
    pastry_phase phase;
    racer_t racers[2];
    pthread_t threads[2];
    int i, round;

    CHECK_OK(pastry_runtime_new(&rt));
    CHECK_OK(pastry_config_new(&cfg));
    /* Peers would be told 0.0.0.0: refused. */
    CHECK_OK(pastry_config_set_bind(cfg, "0.0.0.0:0"));
    CHECK_RC(pastry_node_new(rt, cfg, NULL, &n), PASTRY_ERR_BAD_ADDRESS);
    CHECK(n == NULL);
    CHECK_OK(pastry_config_set_bind(cfg, "127.0.0.1:0"));
    CHECK_RC(pastry_config_set_max_in_flight(cfg, 0), PASTRY_ERR_INVALID_CONFIG);
    CHECK_OK(pastry_config_set_max_in_flight(cfg, 4));
    CHECK_OK(pastry_config_set_retransmit(cfg, 20, 20, 40, 1));
    a = runtime_node(rt, cfg);

    /* stats from inside deliver */
    CHECK_OK(pastry_node_id(a, &own));
    CHECK_OK(pastry_route(a, &own, (const uint8_t *)"s", 1, NULL));
    WAIT_UNTIL(get(&flags.delivered) == 1, 10000);
    CHECK_RC(flags.stats_rc, PASTRY_OK);

    /* The in-flight budget: direct sends to a dead port stay in flight until they fail. */
    memset(&dead, 0, sizeof dead);
    CHECK_OK(pastry_addr_parse("127.0.0.1:9", &dead.addr));
    for (i = 0; i < 4; i++) CHECK_OK(pastry_route(a, NULL, (const uint8_t *)"d", 1, &dead));
    CHECK_RC(pastry_route(a, NULL, (const uint8_t *)"d", 1, &dead), PASTRY_ERR_OVERLOADED);
    WAIT_UNTIL(get(&flags.undeliverable) >= 4, 20000);
    WAIT_UNTIL(pastry_route(a, &own, (const uint8_t *)"again", 5, NULL) == PASTRY_OK, 10000);

    /* abort: gone, drop has run, no goodbye */
    CHECK_OK(pastry_config_set_max_in_flight(cfg, PASTRY_DEFAULT_MAX_IN_FLIGHT));
    b = runtime_node(rt, cfg);
    i = get(&flags.drops);
    CHECK_OK(pastry_node_abort(b, 5000));
    CHECK(get(&flags.drops) == i + 1);
    CHECK_OK(pastry_node_phase(b, &phase));
    CHECK(phase == PASTRY_PHASE_STOPPED);
    CHECK_RC(pastry_route(b, &own, NULL, 0, NULL), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_node_abort(b, 5000), PASTRY_ERR_STOPPED);
    CHECK_OK(pastry_node_free(b));

    /* free racing routes on two other threads */
    for (round = 0; round < 3; round++) {
        pastry_node *victim = runtime_node(rt, cfg);
        for (i = 0; i < 2; i++) {
            racers[i].node = victim;
            racers[i].bad = 0;
            CHECK(pthread_create(&threads[i], NULL, racer, &racers[i]) == 0);
        }
        sleep_ms(2);
        CHECK_OK(pastry_node_free(victim));
        for (i = 0; i < 2; i++) {
            CHECK(pthread_join(threads[i], NULL) == 0);
            CHECK(racers[i].bad == 0);
        }
    }

    pastry_config_free(cfg);
    CHECK_OK(pastry_runtime_free(rt));
    CHECK_OK(pastry_node_free(a));
    CHECK(get(&flags.drops) == 5); /* a, b and the three victims, once each */
}

static void hashes(void) {
    static const uint8_t abc_key[16] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                        0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23};
    pastry_id id;
    int seen[256] = {0}, distinct = 0, i;
    char name[32];
    CHECK_OK(pastry_id_hash((const uint8_t *)"abc", 3, &id));
    CHECK(memcmp(id.bytes, abc_key, 16) == 0); /* SHA-256("abc"), first 16 bytes */
    CHECK_RC(pastry_id_hash(NULL, 1, &id), PASTRY_ERR_NULL_ARGUMENT);
    CHECK_OK(pastry_id_hash(NULL, 0, &id));
    for (i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "object/%03d", i);
        CHECK_OK(pastry_id_hash((const uint8_t *)name, strlen(name), &id));
        if (!seen[id.bytes[0]]++) distinct++;
    }
    CHECK(distinct > 100); /* spread over the ring (an FNV of these gave 2 top bytes) */
}

int main(void) {
    watchdog(120);
    kept_forward();
    end_of_time_and_stopped_codes();
    driven_clock_origin();
    after_free();
    hashes();
    runtime_misuse();
    printf("misuse: ok\n");
    return 0;
}
