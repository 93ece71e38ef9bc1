/*
 * A tiny test harness for the C tests of pastry.h: checks that stop the program with a clear
 * message, a watchdog so no test ever hangs, a clock, and the ring arithmetic the tests use to
 * compute the expected root of a key (the oracle) from the ids they know.
 *
 * Every test program compiles as C11 and as C++17 (-Wall -Wextra -Werror -pedantic).
 */
#ifndef PASTRY_TEST_HARNESS_H
#define PASTRY_TEST_HARNESS_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pastry.h"

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define CHECK_RC(expr, want)                                                             \
    do {                                                                                 \
        uint32_t rc_ = (uint32_t)(expr);                                                 \
        if (rc_ != (uint32_t)(want)) {                                                   \
            fprintf(stderr, "%s:%d: %s returned %u (%s), expected %s\n", __FILE__,      \
                    __LINE__, #expr, (unsigned)rc_, pastry_result_str(rc_), #want);      \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, PASTRY_OK)

/* Milliseconds on the monotonic clock. */
static inline uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void sleep_ms(unsigned ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000u;
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Waits up to `ms` milliseconds for `cond` (polled every 2 ms); fails the test after that. */
#define WAIT_UNTIL(cond, ms)                                                             \
    do {                                                                                 \
        uint64_t until_ = now_ms() + (ms);                                               \
        while (!(cond)) {                                                                \
            if (now_ms() > until_) {                                                     \
                fprintf(stderr, "%s:%d: timed out after %u ms waiting for %s\n",        \
                        __FILE__, __LINE__, (unsigned)(ms), #cond);                      \
                exit(1);                                                                 \
            }                                                                            \
            sleep_ms(2);                                                                 \
        }                                                                                \
    } while (0)

static void harness_on_alarm(int sig) {
    static const char msg[] = "test watchdog: the test took too long; giving up\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */
    }
    _exit(2);
}

/* Ends the process after `seconds` (PASTRY_TEST_TIMEOUT overrides), so a test never hangs. */
static inline void watchdog(unsigned seconds) {
    const char *env = getenv("PASTRY_TEST_TIMEOUT");
    if (env != NULL && atoi(env) > 0) seconds = (unsigned)atoi(env);
    signal(SIGALRM, harness_on_alarm);
    alarm(seconds);
}

/* ---- ids on the ring (big-endian 128-bit numbers) ---- */

static inline pastry_id id_from_u64s(uint64_t hi, uint64_t lo) {
    pastry_id id;
    int i;
    for (i = 0; i < 8; i++) {
        id.bytes[i] = (uint8_t)(hi >> (56 - 8 * i));
        id.bytes[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    return id;
}

static inline int id_eq(const pastry_id *a, const pastry_id *b) {
    return memcmp(a->bytes, b->bytes, 16) == 0;
}

static inline int id_cmp(const pastry_id *a, const pastry_id *b) {
    return memcmp(a->bytes, b->bytes, 16);
}

/* (a - b) mod 2^128. */
static inline pastry_id id_sub(const pastry_id *a, const pastry_id *b) {
    pastry_id r;
    int i, borrow = 0;
    for (i = 15; i >= 0; i--) {
        int d = (int)a->bytes[i] - (int)b->bytes[i] - borrow;
        borrow = d < 0;
        r.bytes[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    return r;
}

/* Ring distance: the shorter way round. */
static inline pastry_id id_distance(const pastry_id *a, const pastry_id *b) {
    pastry_id d1 = id_sub(a, b), d2 = id_sub(b, a);
    return id_cmp(&d1, &d2) < 0 ? d1 : d2;
}

/* Whether `a` is closer to `key` than `b` (ties: the smaller id), the library's root order. */
static inline int id_closer(const pastry_id *key, const pastry_id *a, const pastry_id *b) {
    pastry_id da = id_distance(key, a), db = id_distance(key, b);
    int c = id_cmp(&da, &db);
    return c < 0 || (c == 0 && id_cmp(a, b) < 0);
}

/* Index of the numerically closest of `n` ids to `key`: the key's root. */
static inline size_t oracle_root(const pastry_id *key, const pastry_id *ids, size_t n) {
    size_t best = 0, i;
    for (i = 1; i < n; i++)
        if (id_closer(key, &ids[i], &ids[best])) best = i;
    return best;
}

/* The indexes of the `k` closest ids to `key`, closest first (k <= n <= 64). */
static inline void oracle_closest(const pastry_id *key, const pastry_id *ids, size_t n,
                                  size_t k, size_t *out) {
    int used[64] = {0};
    size_t j, i;
    for (j = 0; j < k; j++) {
        size_t best = n;
        for (i = 0; i < n; i++) {
            if (used[i]) continue;
            if (best == n || id_closer(key, &ids[i], &ids[best])) best = i;
        }
        used[best] = 1;
        out[j] = best;
    }
}

/* A deterministic pseudo-random number generator (xorshift64*). */
static inline uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

#endif /* PASTRY_TEST_HARNESS_H */
