/*
 * ring.c: a small Pastry overlay on 127.0.0.1 through the C API.
 *
 * Starts five nodes on one runtime (the first starts the overlay, the others join through
 * it), routes a message for each of a few names (the key is a hash of the name), and prints
 * where each message was delivered: at the node whose id is numerically closest to the key.
 *
 *   cargo build --release
 *   cc -std=c11 -Iinclude examples/ring.c -Ltarget/release -lpastry \
 *      -Wl,-rpath,$PWD/target/release -pthread -o ring && ./ring
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pastry.h"

#define NODES 5
#define NAMES 6

static const char *names[NAMES] = {"alice", "bob", "carol", "dave", "erin", "frank"};

/* What the deliver upcalls saw (they run on the runtime's thread). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int delivered_at[NAMES];
static uint32_t hops_of[NAMES];
static int delivered;

static void on_deliver(void *userdata, pastry_node *node, const pastry_delivery *msg) {
    int me = (int)(intptr_t)userdata, i;
    (void)node;
    pthread_mutex_lock(&lock);
    for (i = 0; i < NAMES; i++) {
        if (msg->payload_len == strlen(names[i]) &&
            memcmp(msg->payload, names[i], msg->payload_len) == 0) {
            delivered_at[i] = me;
            hops_of[i] = msg->hops;
            delivered++;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* The key of a name: the first 16 bytes of its SHA-256 (pastry_id_hash), so that names as
 * alike as "object/000" and "object/001" land far apart on the ring. */
static pastry_id key_of(const char *name) {
    pastry_id id;
    if (pastry_id_hash((const uint8_t *)name, strlen(name), &id) != PASTRY_OK) {
        memset(&id, 0, sizeof id);
    }
    return id;
}

static int fail(const char *what, pastry_result rc) {
    fprintf(stderr, "%s: %s\n", what, pastry_result_str(rc));
    return 1;
}

static void pause_ms(long ms) {
    struct timespec ts = {0, 0};
    ts.tv_nsec = ms * 1000000L;
    nanosleep(&ts, NULL);
}

int main(void) {
    pastry_runtime *rt = NULL;
    pastry_config *cfg = NULL;
    pastry_node *nodes[NODES];
    pastry_addr first;
    char hex[PASTRY_ID_HEX_BUF], where[PASTRY_ADDR_STR_BUF];
    pastry_result rc;
    int i, waited;

    printf("pastry %s (ABI %u)\n", pastry_version(), pastry_abi_version());
    if ((rc = pastry_runtime_new(&rt)) != PASTRY_OK) return fail("runtime", rc);
    if ((rc = pastry_config_new(&cfg)) != PASTRY_OK) return fail("config", rc);
    for (i = 0; i < NODES; i++) {
        pastry_callbacks cb;
        pastry_id id;
        memset(&cb, 0, sizeof cb);
        cb.userdata = (void *)(intptr_t)i;
        cb.deliver = on_deliver;
        if ((rc = pastry_node_new(rt, cfg, &cb, &nodes[i])) != PASTRY_OK) return fail("node", rc);
        if (i == 0) {
            pastry_node_start(nodes[0]);
            rc = pastry_node_wait_joined(nodes[0], 5000);
            pastry_node_addr(nodes[0], &first);
        } else {
            rc = pastry_node_join(nodes[i], &first, 1, 10000);
        }
        if (rc != PASTRY_OK) return fail("join", rc);
        pastry_node_id(nodes[i], &id);
        pastry_id_to_hex(&id, hex, sizeof hex);
        pastry_node_addr_str(nodes[i], where, sizeof where);
        printf("node %d  %s  at %s\n", i, hex, where);
    }
    pastry_config_free(cfg);

    /* Give the leaf sets a moment to learn every member. */
    for (waited = 0; waited < 5000; waited += 10) {
        pastry_peer peers[NODES];
        size_t count = NODES;
        pastry_node_neighbor_set(nodes[NODES - 1], peers, &count);
        if (count == NODES - 1) break;
        pause_ms(10);
    }

    for (i = 0; i < NAMES; i++) {
        pastry_id key = key_of(names[i]);
        rc = pastry_route(nodes[i % NODES], &key, (const uint8_t *)names[i], strlen(names[i]),
                          NULL);
        if (rc != PASTRY_OK) return fail("route", rc);
    }
    for (waited = 0; waited < 10000; waited += 10) {
        int done;
        pthread_mutex_lock(&lock);
        done = delivered == NAMES;
        pthread_mutex_unlock(&lock);
        if (done) break;
        pause_ms(10);
    }
    pthread_mutex_lock(&lock);
    for (i = 0; i < NAMES; i++) {
        pastry_id key = key_of(names[i]);
        pastry_id_to_hex(&key, hex, sizeof hex);
        printf("%-6s key %s  sent by node %d, delivered at node %d after %u hop(s)\n", names[i],
               hex, i % NODES, delivered_at[i], hops_of[i]);
    }
    i = delivered;
    pthread_mutex_unlock(&lock);

    for (waited = 0; waited < NODES; waited++) pastry_node_free(nodes[waited]);
    pastry_runtime_free(rt);
    if (i != NAMES) {
        fprintf(stderr, "only %d of %d messages were delivered\n", i, NAMES);
        return 1;
    }
    return 0;
}
