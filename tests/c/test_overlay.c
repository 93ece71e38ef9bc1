/*
 * A six-node overlay on one runtime, on 127.0.0.1: joins, deliveries at the numerically
 * closest node (the oracle computed here from the ids), replica sets, local_lookup and range,
 * forward upcalls that drop, redirect (next hop and key) and rewrite messages, direct sends,
 * route from inside deliver, calls refused inside callbacks (free, runtime free, blocking
 * waits, queries from forward), leaf-set updates, graceful shutdown, and drop(userdata)
 * running exactly once per node.
 */
#include "harness.h"

#define N 6
#define WAIT_MS 30000u
#define MAX_GOT 256

typedef struct {
    int node;
    char payload[64];
    size_t len;
    pastry_id key;
    uint32_t hops;
    uint64_t msg_id;
} delivery;

typedef struct {
    pthread_mutex_t lock;
    delivery got[MAX_GOT];
    size_t ngot;
    int forward_drops;
    int updates_joined, updates_left;
    int drops;
    int pong_rc, free_rc, rtfree_rc, wait_rc, replica_rc, query_in_forward_rc;
    size_t replicas_in_deliver;
} shared_state;

typedef struct {
    shared_state *s;
    int index;
} node_ctx;

static shared_state S;
static node_ctx ctxs[N];
static pastry_id ids[N];
static pastry_peer peers[N];
static pastry_node *nodes[N];
static pastry_runtime *rt;

static int starts_with(const pastry_forward *m, const char *prefix) {
    size_t n = strlen(prefix);
    return m->payload_len >= n && memcmp(m->payload, prefix, n) == 0;
}

static uint32_t on_forward(void *ud, pastry_node *node, pastry_forward *m) {
    node_ctx *c = (node_ctx *)ud;
    if (starts_with(m, "drop:") && m->hops == 0) {
        pthread_mutex_lock(&c->s->lock);
        c->s->forward_drops++;
        pthread_mutex_unlock(&c->s->lock);
        return PASTRY_FORWARD_DROP;
    }
    if (starts_with(m, "redir:")) {
        int target = m->payload[6] - '0';
        if (c->index == target) {
            m->has_next_hop = false; /* deliver here */
        } else if (m->hops == 0) {
            m->next_hop = peers[target];
            m->has_next_hop = true;
        }
    }
    if (starts_with(m, "rekey:") && m->hops == 0) m->key = ids[m->payload[6] - '0'];
    if (starts_with(m, "upper:") && m->hops == 0) {
        char up[32];
        size_t i, n = m->payload_len - 6;
        for (i = 0; i < n && i < sizeof up; i++) {
            char ch = (char)m->payload[6 + i];
            up[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
        }
        CHECK_OK(pastry_forward_set_payload(m, (const uint8_t *)up, i));
        CHECK(m->payload_len == i && memcmp(m->payload, up, i) == 0);
    }
    if (starts_with(m, "probe-forward") && m->hops == 0) {
        pastry_peer out[4];
        size_t count = 4;
        int rc = (int)pastry_node_neighbor_set(node, out, &count);
        pthread_mutex_lock(&c->s->lock);
        c->s->query_in_forward_rc = rc;
        pthread_mutex_unlock(&c->s->lock);
    }
    return PASTRY_FORWARD_CONTINUE;
}

static void on_deliver(void *ud, pastry_node *node, const pastry_delivery *msg) {
    node_ctx *c = (node_ctx *)ud;
    shared_state *s = c->s;
    delivery d;
    memset(&d, 0, sizeof d);
    d.node = c->index;
    d.len = msg->payload_len < sizeof d.payload - 1 ? msg->payload_len : sizeof d.payload - 1;
    if (d.len > 0) memcpy(d.payload, msg->payload, d.len);
    d.key = msg->key;
    d.hops = msg->hops;
    d.msg_id = msg->msg_id;

    if (strcmp(d.payload, "ping") == 0) {
        int rc = (int)pastry_route(node, &msg->source.id, (const uint8_t *)"pong", 4, NULL);
        pthread_mutex_lock(&s->lock);
        s->pong_rc = rc;
        pthread_mutex_unlock(&s->lock);
    }
    if (strcmp(d.payload, "free-me") == 0) {
        pastry_peer out[8];
        size_t count = 8;
        int free_rc = (int)pastry_node_free(node);
        int rtfree_rc = (int)pastry_runtime_free(rt);
        int wait_rc = (int)pastry_node_wait_joined(node, 10);
        int replica_rc = (int)pastry_node_replica_set(node, &msg->key, 3, out, &count);
        pthread_mutex_lock(&s->lock);
        s->free_rc = free_rc;
        s->rtfree_rc = rtfree_rc;
        s->wait_rc = wait_rc;
        s->replica_rc = replica_rc;
        s->replicas_in_deliver = count;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    if (s->ngot < MAX_GOT) s->got[s->ngot++] = d;
    pthread_mutex_unlock(&s->lock);
}

static void on_update(void *ud, pastry_node *node, const pastry_peer *peer, bool joined) {
    node_ctx *c = (node_ctx *)ud;
    (void)node;
    CHECK(peer != NULL);
    pthread_mutex_lock(&c->s->lock);
    if (joined)
        c->s->updates_joined++;
    else
        c->s->updates_left++;
    pthread_mutex_unlock(&c->s->lock);
}

static void on_drop(void *ud) {
    node_ctx *c = (node_ctx *)ud;
    pthread_mutex_lock(&c->s->lock);
    c->s->drops++;
    pthread_mutex_unlock(&c->s->lock);
}

static size_t locked_ngot(void) {
    size_t n;
    pthread_mutex_lock(&S.lock);
    n = S.ngot;
    pthread_mutex_unlock(&S.lock);
    return n;
}

static int locked_int(const int *p) {
    int v;
    pthread_mutex_lock(&S.lock);
    v = *p;
    pthread_mutex_unlock(&S.lock);
    return v;
}

/* The delivery whose payload is `text` (waits for it), copied out. */
static delivery wait_delivery(const char *text) {
    uint64_t until = now_ms() + WAIT_MS;
    for (;;) {
        size_t i;
        pthread_mutex_lock(&S.lock);
        for (i = 0; i < S.ngot; i++) {
            if (strcmp(S.got[i].payload, text) == 0) {
                delivery d = S.got[i];
                pthread_mutex_unlock(&S.lock);
                return d;
            }
        }
        pthread_mutex_unlock(&S.lock);
        if (now_ms() > until) {
            fprintf(stderr, "timed out waiting for the delivery of \"%s\"\n", text);
            exit(1);
        }
        sleep_ms(2);
    }
}

static int count_deliveries(const char *text) {
    size_t i;
    int n = 0;
    pthread_mutex_lock(&S.lock);
    for (i = 0; i < S.ngot; i++)
        if (strcmp(S.got[i].payload, text) == 0) n++;
    pthread_mutex_unlock(&S.lock);
    return n;
}

static size_t neighbors(int i) {
    pastry_peer out[16];
    size_t count = 16;
    CHECK_OK(pastry_node_neighbor_set(nodes[i], out, &count));
    return count;
}

static int all_leaf_sets_full(int n) {
    int i;
    for (i = 0; i < n; i++)
        if (neighbors(i) != (size_t)(n - 1)) return 0;
    return 1;
}

static void route_text(int from, const pastry_id *key, const char *text) {
    CHECK_OK(pastry_route(nodes[from], key, (const uint8_t *)text, strlen(text), NULL));
}

static void start_overlay(uint64_t *seed) {
    pastry_config *cfg = NULL;
    pastry_callbacks cb;
    int i;
    CHECK_OK(pastry_runtime_new(&rt));
    CHECK_OK(pastry_config_new(&cfg));
    CHECK_OK(pastry_config_set_network(cfg, 7));
    for (i = 0; i < N; i++) {
        pastry_id got;
        ids[i] = id_from_u64s(rng_next(seed), rng_next(seed));
        CHECK_OK(pastry_config_set_id(cfg, &ids[i]));
        ctxs[i].s = &S;
        ctxs[i].index = i;
        memset(&cb, 0, sizeof cb);
        cb.userdata = &ctxs[i];
        cb.deliver = on_deliver;
        cb.forward = on_forward;
        cb.update = on_update;
        cb.drop = on_drop;
        CHECK_OK(pastry_node_new(rt, cfg, &cb, &nodes[i]));
        if (i == 0) {
            CHECK_OK(pastry_node_start(nodes[0]));
            CHECK_OK(pastry_node_wait_joined(nodes[0], WAIT_MS));
        } else {
            CHECK_OK(pastry_node_join(nodes[i], &peers[0].addr, 1, WAIT_MS));
        }
        CHECK_OK(pastry_node_id(nodes[i], &got));
        CHECK(id_eq(&got, &ids[i]));
        peers[i].id = ids[i];
        CHECK_OK(pastry_node_addr(nodes[i], &peers[i].addr));
    }
    pastry_config_free(cfg);
    WAIT_UNTIL(all_leaf_sets_full(N), WAIT_MS);
}

static void test_deliveries_at_the_root(uint64_t *seed) {
    enum { M = 40 };
    pastry_id keys[M];
    uint64_t msg_ids[M];
    int i;
    size_t j;
    for (i = 0; i < M; i++) {
        char text[32];
        int from = (int)(rng_next(seed) % N);
        keys[i] = id_from_u64s(rng_next(seed), rng_next(seed));
        snprintf(text, sizeof text, "m%d", i);
        if (i % 2 == 0) {
            route_text(from, &keys[i], text);
            msg_ids[i] = 0;
        } else {
            /* The id route hands back is the one the root's deliver sees. */
            CHECK_OK(pastry_route_with_id(nodes[from], &keys[i], (const uint8_t *)text,
                                          strlen(text), NULL, &msg_ids[i]));
            CHECK_RC(pastry_route_with_id(nodes[from], &keys[i], NULL, 0, NULL, NULL),
                     PASTRY_ERR_NULL_ARGUMENT);
        }
    }
    WAIT_UNTIL(locked_ngot() >= M, WAIT_MS);
    CHECK(locked_ngot() == M);
    pthread_mutex_lock(&S.lock);
    for (j = 0; j < S.ngot; j++) {
        int m = atoi(S.got[j].payload + 1);
        size_t root = oracle_root(&keys[m], ids, N);
        CHECK(S.got[j].payload[0] == 'm' && m >= 0 && m < M);
        CHECK(id_eq(&S.got[j].key, &keys[m]));
        CHECK(msg_ids[m] == 0 || S.got[j].msg_id == msg_ids[m]);
        if ((size_t)S.got[j].node != root) {
            fprintf(stderr, "message m%d delivered at node %d, root is %zu\n", m,
                    S.got[j].node, root);
            exit(1);
        }
    }
    pthread_mutex_unlock(&S.lock);
    for (i = 0; i < M; i++) {
        char text[32];
        snprintf(text, sizeof text, "m%d", i);
        CHECK(count_deliveries(text) == 1);
    }
}

static void test_queries(uint64_t *seed) {
    int t;
    for (t = 0; t < 8; t++) {
        pastry_id key = id_from_u64s(rng_next(seed), rng_next(seed));
        size_t root = oracle_root(&key, ids, N), want[3], count = 8, i;
        pastry_peer out[8];
        pastry_id lo, hi;
        oracle_closest(&key, ids, N, 3, want);
        CHECK_OK(pastry_node_replica_set(nodes[root], &key, 2, out, &count));
        CHECK(count == 3);
        for (i = 0; i < 3; i++) CHECK(id_eq(&out[i].id, &ids[want[i]]));
        CHECK(out[0].addr.port == peers[root].addr.port);
        count = 1; /* a smaller array gets the closest ones */
        CHECK_OK(pastry_node_replica_set(nodes[root], &key, 2, out, &count));
        CHECK(count == 1 && id_eq(&out[0].id, &ids[root]));
        /* local_lookup: the root has no next hop toward its own key; others do. */
        count = 8;
        CHECK_OK(pastry_node_local_lookup(nodes[(root + 1) % N], &key, false, out, &count));
        CHECK(count >= 1);
        count = 8;
        CHECK_OK(pastry_node_local_lookup(nodes[root], &key, true, out, &count));
        CHECK(count == 0);
        /* range: the root's rank-0 range contains the key. */
        CHECK_OK(pastry_node_range(nodes[root], &ids[root], 0, &lo, &hi));
        {
            pastry_id a = id_sub(&key, &lo), b = id_sub(&hi, &lo);
            CHECK(id_cmp(&a, &b) <= 0);
        }
    }
}

static void test_forward_upcalls(uint64_t *seed) {
    pastry_id key = id_from_u64s(rng_next(seed), rng_next(seed));
    int root = (int)oracle_root(&key, ids, N);
    int src = (root + 1) % N, target = (root + 2) % N;
    char text[32];
    delivery d;

    /* A forward that drops at the source: never delivered. */
    route_text(src, &key, "drop:x");
    WAIT_UNTIL(locked_int(&S.forward_drops) == 1, WAIT_MS);
    route_text(src, &key, "after-drop");
    d = wait_delivery("after-drop");
    CHECK(d.node == root);
    CHECK(count_deliveries("drop:x") == 0);

    /* A forward that redirects the next hop: delivered at the target, not at the root. */
    snprintf(text, sizeof text, "redir:%d", target);
    route_text(src, &key, text);
    d = wait_delivery(text);
    CHECK(d.node == target);

    /* A forward that changes the key: routed to the new key's root. */
    snprintf(text, sizeof text, "rekey:%d", target);
    route_text(src, &key, text);
    d = wait_delivery(text);
    CHECK(d.node == target && id_eq(&d.key, &ids[target]));

    /* A forward that rewrites the payload. */
    route_text(src, &key, "upper:abc");
    d = wait_delivery("ABC");
    CHECK(d.node == root);

    /* A direct send: hint without key. */
    CHECK_OK(pastry_route(nodes[src], NULL, (const uint8_t *)"direct", 6, &peers[target]));
    d = wait_delivery("direct");
    CHECK(d.node == target && id_eq(&d.key, &ids[target]));

    /* Queries from forward are refused (the node is busy routing). */
    route_text(src, &key, "probe-forward");
    wait_delivery("probe-forward");
    CHECK(locked_int(&S.query_in_forward_rc) == PASTRY_ERR_IN_CALLBACK);
}

static void test_calls_from_deliver(uint64_t *seed) {
    pastry_id key = id_from_u64s(rng_next(seed), rng_next(seed));
    int root = (int)oracle_root(&key, ids, N);
    int src = (root + 3) % N;
    delivery d;

    /* route from inside deliver: ping at the root answers pong to the source. */
    route_text(src, &key, "ping");
    d = wait_delivery("pong");
    CHECK(d.node == src);
    CHECK(locked_int(&S.pong_rc) == PASTRY_OK);

    /* free, runtime free and blocking waits are refused inside a callback; queries work. */
    route_text(src, &key, "free-me");
    wait_delivery("free-me");
    CHECK(locked_int(&S.free_rc) == PASTRY_ERR_IN_CALLBACK);
    CHECK(locked_int(&S.rtfree_rc) == PASTRY_ERR_IN_CALLBACK);
    CHECK(locked_int(&S.wait_rc) == PASTRY_ERR_IN_CALLBACK);
    CHECK(locked_int(&S.replica_rc) == PASTRY_OK);
    pthread_mutex_lock(&S.lock);
    CHECK(S.replicas_in_deliver == 4);
    pthread_mutex_unlock(&S.lock);
}

static void test_stats_and_updates(void) {
    uint64_t delivered = 0;
    int i;
    for (i = 0; i < N; i++) {
        pastry_stats st;
        memset(&st, 0, sizeof st);
        CHECK_OK(pastry_node_stats(nodes[i], &st, sizeof st));
        CHECK(st.datagrams_in > 0 && st.datagrams_out > 0);
        CHECK(st.upcall_panics == 0);
        delivered += st.delivered;
    }
    CHECK(delivered == locked_ngot());
    CHECK(locked_int(&S.updates_joined) >= N * (N - 1));
}

static void test_graceful_leave(uint64_t *seed) {
    enum { M = 12 };
    pastry_id keys[M];
    char text[32];
    int i;
    pastry_phase ph;
    CHECK_OK(pastry_node_shutdown(nodes[N - 1], WAIT_MS));
    CHECK(locked_int(&S.drops) == 1);
    CHECK_OK(pastry_node_phase(nodes[N - 1], &ph));
    CHECK(ph == PASTRY_PHASE_STOPPED);
    WAIT_UNTIL(locked_int(&S.updates_left) >= N - 1, WAIT_MS);
    WAIT_UNTIL(all_leaf_sets_full(N - 1), WAIT_MS);
    /* The remaining five deliver every key at the root among them. */
    for (i = 0; i < M; i++) {
        delivery d;
        keys[i] = id_from_u64s(rng_next(seed), rng_next(seed));
        snprintf(text, sizeof text, "after%d", i);
        route_text(i % (N - 1), &keys[i], text);
        d = wait_delivery(text);
        CHECK((size_t)d.node == oracle_root(&keys[i], ids, N - 1));
    }
}

int main(void) {
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int i;
    watchdog(180);
    pthread_mutex_init(&S.lock, NULL);
    start_overlay(&seed);
    test_deliveries_at_the_root(&seed);
    test_queries(&seed);
    test_forward_upcalls(&seed);
    test_calls_from_deliver(&seed);
    test_stats_and_updates();
    test_graceful_leave(&seed);
    for (i = 0; i < N; i++) CHECK_OK(pastry_node_free(nodes[i]));
    CHECK(locked_int(&S.drops) == N);
    CHECK_OK(pastry_runtime_free(rt));
    CHECK(locked_int(&S.drops) == N);
    pthread_mutex_destroy(&S.lock);
    printf("test_overlay: all checks passed\n");
    return 0;
}
