/*
 * Caller-driven nodes: three nodes without a runtime, exchanging datagrams through this test's
 * own loop (in memory, on a virtual clock). Joins, deliveries at the oracle root, events,
 * buffers that are too small, garbage datagrams, forward upcalls (drop, and pastry_route from
 * inside forward), calls refused from inside forward, a graceful leave seen by the others,
 * and drop(userdata) running once per node.
 */
#include "harness.h"

#define N 3
#define MAX_EVENTS 1024

typedef struct {
    int node;
    uint32_t kind;
    char payload[128];
    size_t len;
    pastry_id key;
    pastry_peer peer;
} event_rec;

typedef struct {
    int index;
    int forwards;
    int drops;
    uint32_t relay_rc, free_rc, input_rc, query_rc;
} node_ctx;

static pastry_node *nodes[N];
static pastry_addr addrs[N];
static pastry_id ids[N];
static node_ctx ctxs[N];
static int alive[N];
static uint64_t now_us;
static event_rec events[MAX_EVENTS];
static size_t nevents;
static uint8_t dgram[PASTRY_MAX_DATAGRAM];

static int starts_with(const pastry_forward *m, const char *prefix) {
    size_t n = strlen(prefix);
    return m->payload_len >= n && memcmp(m->payload, prefix, n) == 0;
}

static uint32_t on_forward(void *ud, pastry_node *node, pastry_forward *m) {
    node_ctx *c = (node_ctx *)ud;
    c->forwards++;
    if (starts_with(m, "drop") && m->hops == 0) return PASTRY_FORWARD_DROP;
    if (m->payload_len == 5 && starts_with(m, "relay") && m->hops == 0) {
        pastry_peer out[4];
        size_t count = 4;
        /* route from inside the node's own forward: queued, routed after this input */
        c->relay_rc = (uint32_t)pastry_route(node, &ids[2], (const uint8_t *)"relayed", 7, NULL);
        c->free_rc = (uint32_t)pastry_node_free(node);
        c->input_rc = (uint32_t)pastry_node_handle_timeout(node, now_us);
        c->query_rc = (uint32_t)pastry_node_neighbor_set(node, out, &count);
    }
    return PASTRY_FORWARD_CONTINUE;
}

static void on_drop(void *ud) {
    ((node_ctx *)ud)->drops++;
}

static int index_of(const pastry_addr *a) {
    int i;
    for (i = 0; i < N; i++)
        if (alive[i] && memcmp(&addrs[i], a, sizeof *a) == 0) return i;
    return -1;
}

static void drain_events(int i) {
    static uint8_t payload[PASTRY_MAX_PAYLOAD_LIMIT];
    pastry_event ev;
    for (;;) {
        uint32_t rc = (uint32_t)pastry_node_poll_event(nodes[i], &ev, payload, sizeof payload);
        if (rc == PASTRY_NONE) return;
        CHECK_RC(rc, PASTRY_OK);
        CHECK(nevents < MAX_EVENTS);
        memset(&events[nevents], 0, sizeof events[nevents]);
        events[nevents].node = i;
        events[nevents].kind = (uint32_t)ev.kind;
        events[nevents].key = ev.key;
        events[nevents].peer = ev.peer;
        if (ev.kind == PASTRY_EVENT_DELIVERED) {
            size_t n = ev.payload_len < 127 ? ev.payload_len : 127;
            memcpy(events[nevents].payload, payload, n);
            events[nevents].len = ev.payload_len;
        }
        nevents++;
    }
}

/* Moves every datagram in flight to its destination (at the current time), then the events. */
static void pump(void) {
    int moved = 1, i;
    while (moved) {
        moved = 0;
        for (i = 0; i < N; i++) {
            size_t len = 0;
            pastry_addr dst;
            if (!alive[i]) continue;
            while (pastry_node_poll_transmit(nodes[i], dgram, sizeof dgram, &len, &dst) ==
                   PASTRY_OK) {
                int j = index_of(&dst);
                moved = 1;
                if (j >= 0)
                    CHECK_OK(pastry_node_handle_datagram(nodes[j], &addrs[i], dgram, len, now_us));
            }
        }
    }
    for (i = 0; i < N; i++)
        if (alive[i]) drain_events(i);
}

/* Pumps, then jumps the clock to the earliest deadline and fires it; `rounds` times or until
 * `done()` holds. */
static void run(int rounds, int (*done)(void)) {
    int r, i;
    for (r = 0; r < rounds; r++) {
        uint64_t next = UINT64_MAX, at;
        pump();
        if (done != NULL && done()) return;
        for (i = 0; i < N; i++)
            if (alive[i] && pastry_node_poll_timeout(nodes[i], &at) == PASTRY_OK && at < next)
                next = at;
        if (next == UINT64_MAX) return;
        if (next > now_us) now_us = next;
        for (i = 0; i < N; i++)
            if (alive[i]) CHECK_OK(pastry_node_handle_timeout(nodes[i], now_us));
    }
}

static size_t count_events(int node, uint32_t kind) {
    size_t i, n = 0;
    for (i = 0; i < nevents; i++)
        if ((node < 0 || events[i].node == node) && events[i].kind == kind) n++;
    return n;
}

static const event_rec *find_delivery(const char *text) {
    size_t i;
    for (i = 0; i < nevents; i++)
        if (events[i].kind == PASTRY_EVENT_DELIVERED && strcmp(events[i].payload, text) == 0)
            return &events[i];
    return NULL;
}

static int all_joined(void) {
    return count_events(-1, PASTRY_EVENT_JOINED) == N;
}

static void create_nodes(void) {
    pastry_config *cfg = NULL;
    pastry_callbacks cb;
    pastry_node *bad = NULL;
    int i;
    CHECK_OK(pastry_config_new(&cfg));
    CHECK_RC(pastry_node_new_driven(cfg, NULL, &bad), PASTRY_ERR_BAD_ADDRESS); /* port 0 */
    CHECK_OK(pastry_config_set_bind(cfg, "0.0.0.0:4000"));
    CHECK_RC(pastry_node_new_driven(cfg, NULL, &bad), PASTRY_ERR_BAD_ADDRESS);
    CHECK(bad == NULL);
    for (i = 0; i < N; i++) {
        char bind[32];
        ids[i] = id_from_u64s(0x1000000000000000ull + (uint64_t)i * 0x5000000000000000ull, 77);
        snprintf(bind, sizeof bind, "127.0.0.1:%d", 41000 + i);
        CHECK_OK(pastry_config_set_bind(cfg, bind));
        CHECK_OK(pastry_config_set_id(cfg, &ids[i]));
        CHECK_OK(pastry_config_set_seed(cfg, 1000 + (uint64_t)i));
        ctxs[i].index = i;
        memset(&cb, 0, sizeof cb);
        cb.userdata = &ctxs[i];
        cb.forward = on_forward;
        cb.drop = on_drop;
        CHECK_OK(pastry_node_new_driven(cfg, &cb, &nodes[i]));
        CHECK_OK(pastry_node_addr(nodes[i], &addrs[i]));
        CHECK(addrs[i].port == 41000 + i);
        alive[i] = 1;
    }
    pastry_config_free(cfg);
}

static void test_join(void) {
    pastry_phase ph;
    uint64_t at;
    CHECK_RC(pastry_node_poll_timeout(nodes[0], &at), PASTRY_NONE); /* idle: no timer */
    CHECK_RC(pastry_node_join(nodes[1], &addrs[0], 1, 100), PASTRY_ERR_WRONG_MODE);
    CHECK_RC(pastry_node_wait_joined(nodes[1], 100), PASTRY_ERR_WRONG_MODE);
    CHECK_RC(pastry_route(nodes[0], &ids[0], NULL, 0, NULL), PASTRY_ERR_NOT_ACTIVE);
    CHECK_OK(pastry_node_start(nodes[0]));
    CHECK_RC(pastry_node_start(nodes[0]), PASTRY_ERR_ALREADY_STARTED);
    CHECK_RC(pastry_node_start_join(nodes[1], &addrs[0], 0), PASTRY_ERR_NO_BOOTSTRAP);
    CHECK_OK(pastry_node_start_join(nodes[1], &addrs[0], 1));
    CHECK_OK(pastry_node_phase(nodes[1], &ph));
    CHECK(ph == PASTRY_PHASE_JOINING);
    CHECK_OK(pastry_node_start_join(nodes[2], &addrs[1], 1));
    run(500, all_joined);
    CHECK(all_joined());
    CHECK_OK(pastry_node_phase(nodes[2], &ph));
    CHECK(ph == PASTRY_PHASE_ACTIVE);
    run(50, NULL); /* let the leaf sets settle */
    {
        int i;
        for (i = 0; i < N; i++) {
            pastry_peer out[8];
            size_t count = 8;
            CHECK_OK(pastry_node_neighbor_set(nodes[i], out, &count));
            CHECK(count == N - 1);
        }
    }
    CHECK(count_events(0, PASTRY_EVENT_NEIGHBOR_JOINED) == N - 1);
}

static void test_routing(void) {
    enum { M = 30 };
    uint64_t seed = 12345;
    pastry_id keys[M];
    int i;
    size_t before = count_events(-1, PASTRY_EVENT_DELIVERED);
    for (i = 0; i < M; i++) {
        char text[32];
        keys[i] = id_from_u64s(rng_next(&seed), rng_next(&seed));
        snprintf(text, sizeof text, "d%d", i);
        CHECK_OK(pastry_route(nodes[i % N], &keys[i], (const uint8_t *)text, strlen(text), NULL));
    }
    run(20, NULL);
    CHECK(count_events(-1, PASTRY_EVENT_DELIVERED) == before + M);
    for (i = 0; i < M; i++) {
        char text[32];
        const event_rec *e;
        snprintf(text, sizeof text, "d%d", i);
        e = find_delivery(text);
        CHECK(e != NULL);
        CHECK((size_t)e->node == oracle_root(&keys[i], ids, N));
        CHECK(id_eq(&e->key, &keys[i]));
        CHECK(id_eq(&e->peer.id, &ids[i % N])); /* the source */
    }
    /* Replica set at a root. */
    {
        pastry_peer out[4];
        size_t count = 4, want[3], k;
        oracle_closest(&keys[0], ids, N, 3, want);
        CHECK_OK(pastry_node_replica_set(nodes[want[0]], &keys[0], 5, out, &count));
        CHECK(count == 3);
        for (k = 0; k < 3; k++) CHECK(id_eq(&out[k].id, &ids[want[k]]));
    }
}

static void test_small_buffers_and_garbage(void) {
    uint8_t payload[100], small[10];
    uint8_t big[200];
    size_t len = 0;
    pastry_addr dst;
    pastry_event ev;
    pastry_stats st;
    static const uint8_t garbage[] = {1, 2, 3, 4, 5, 6, 7, 8};
    memset(payload, 'p', sizeof payload);
    /* A delivery at the node itself (the root of its own id), then a too-small buffer. */
    CHECK_OK(pastry_route(nodes[2], &ids[2], payload, sizeof payload, NULL));
    CHECK_RC(pastry_node_poll_event(nodes[2], &ev, small, sizeof small),
             PASTRY_ERR_BUFFER_TOO_SMALL);
    CHECK_OK(pastry_node_poll_event(nodes[2], &ev, big, sizeof big));
    CHECK(ev.kind == PASTRY_EVENT_DELIVERED && ev.payload_len == sizeof payload);
    CHECK(memcmp(big, payload, sizeof payload) == 0);
    /* A datagram to another node, then a too-small buffer: it stays queued. (Pump first, so
     * nothing a timer queued earlier stands before it.) */
    pump();
    CHECK_OK(pastry_route(nodes[0], &ids[1], payload, sizeof payload, NULL));
    CHECK_RC(pastry_node_poll_transmit(nodes[0], small, sizeof small, &len, &dst),
             PASTRY_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 0);
    CHECK_OK(pastry_node_poll_transmit(nodes[0], dgram, sizeof dgram, &len, &dst));
    CHECK(len > sizeof payload && index_of(&dst) == 1);
    CHECK_OK(pastry_node_handle_datagram(nodes[1], &addrs[0], dgram, len, now_us));
    run(5, NULL);
    /* Garbage is counted and dropped. */
    CHECK_OK(pastry_node_handle_datagram(nodes[1], &addrs[0], garbage, sizeof garbage, now_us));
    CHECK_OK(pastry_node_handle_datagram(nodes[1], &addrs[0], NULL, 0, now_us));
    memset(&st, 0, sizeof st);
    CHECK_OK(pastry_node_stats(nodes[1], &st, sizeof st));
    CHECK(st.bad_frames == 2);
    /* A smaller size (an older header) gets the first fields only. */
    memset(&st, 0xff, sizeof st);
    CHECK_OK(pastry_node_stats(nodes[1], &st, 2 * sizeof(uint64_t)));
    CHECK(st.datagrams_in > 0 && st.bytes_out == UINT64_MAX);
}

static void test_forward(void) {
    const event_rec *e;
    pastry_id key = ids[1];
    CHECK_OK(pastry_route(nodes[0], &key, (const uint8_t *)"drop-me", 7, NULL));
    CHECK_OK(pastry_route(nodes[0], &key, (const uint8_t *)"relay", 5, NULL));
    run(20, NULL);
    CHECK(find_delivery("drop-me") == NULL);
    e = find_delivery("relay");
    CHECK(e != NULL && e->node == 1);
    e = find_delivery("relayed");
    CHECK(e != NULL && e->node == 2);
    CHECK(ctxs[0].relay_rc == PASTRY_OK);
    CHECK(ctxs[0].free_rc == PASTRY_ERR_IN_CALLBACK);
    CHECK(ctxs[0].input_rc == PASTRY_ERR_IN_CALLBACK);
    CHECK(ctxs[0].query_rc == PASTRY_ERR_IN_CALLBACK);
    CHECK(ctxs[0].forwards > 0 && ctxs[1].forwards > 0);
}

static void test_leave(void) {
    uint64_t seed = 99;
    int i;
    CHECK_OK(pastry_node_shutdown(nodes[2], 0));
    pump(); /* the goodbyes reach the others */
    CHECK(count_events(0, PASTRY_EVENT_NEIGHBOR_LEFT) == 1);
    CHECK(count_events(1, PASTRY_EVENT_NEIGHBOR_LEFT) == 1);
    CHECK_RC(pastry_route(nodes[2], &ids[0], NULL, 0, NULL), PASTRY_ERR_STOPPED);
    CHECK_RC(pastry_node_shutdown(nodes[2], 0), PASTRY_ERR_STOPPED);
    alive[2] = 0;
    CHECK(ctxs[2].drops == 0);
    CHECK_OK(pastry_node_free(nodes[2]));
    CHECK(ctxs[2].drops == 1);
    for (i = 0; i < 10; i++) {
        char text[32];
        pastry_id key = id_from_u64s(rng_next(&seed), rng_next(&seed));
        const event_rec *e;
        snprintf(text, sizeof text, "post%d", i);
        CHECK_OK(pastry_route(nodes[i % 2], &key, (const uint8_t *)text, strlen(text), NULL));
        run(10, NULL);
        e = find_delivery(text);
        CHECK(e != NULL && (size_t)e->node == oracle_root(&key, ids, 2));
    }
}

int main(void) {
    watchdog(120);
    create_nodes();
    test_join();
    test_routing();
    test_small_buffers_and_garbage();
    test_forward();
    test_leave();
    CHECK_OK(pastry_node_free(nodes[0]));
    CHECK_OK(pastry_node_free(nodes[1]));
    CHECK(ctxs[0].drops == 1 && ctxs[1].drops == 1 && ctxs[2].drops == 1);
    printf("test_driven: all checks passed\n");
    return 0;
}
