// The C++ RAII wrapper (bindings/cpp/pastry.hpp): nodes on a runtime with std::function
// upcalls, deliveries at the oracle root, exceptions carrying result codes, exceptions thrown
// by upcalls caught and counted (never crossing into the library), move-only handles, drop
// after shutdown, and two caller-driven nodes.
#include <map>
#include <mutex>
#include <thread>

#include "harness.h"
#include "pastry.hpp"

namespace {

struct Inbox {
    std::mutex lock;
    std::vector<std::pair<int, std::string>> got;  // (node index, payload)

    void add(int node, const std::string& text) {
        std::lock_guard<std::mutex> g(lock);
        got.emplace_back(node, text);
    }
    int find(const std::string& text) {
        std::lock_guard<std::mutex> g(lock);
        for (auto& p : got)
            if (p.second == text) return p.first;
        return -1;
    }
    size_t size() {
        std::lock_guard<std::mutex> g(lock);
        return got.size();
    }
};

template <typename F>
void expect_error(pastry_result code, F&& f) {
    try {
        f();
    } catch (const pastry::Error& e) {
        CHECK(e.code() == code);
        CHECK(std::string(e.what()).find(pastry_result_str(code)) != std::string::npos);
        return;
    }
    CHECK(!"no pastry::Error thrown");
}

void test_runtime_nodes() {
    const int n = 4;
    Inbox inbox;
    std::atomic<int> forward_drops{0};
    pastry::Runtime rt;
    std::vector<pastry::Node> nodes;
    std::vector<pastry_id> ids;
    for (int i = 0; i < n; i++) {
        pastry::Id id(id_from_u64s(0x0123456789abcdefull * static_cast<uint64_t>(i + 1), 42));
        ids.push_back(id.raw);
        pastry::Callbacks cb;
        cb.deliver = [&inbox, i](pastry::NodeRef&, const pastry::Delivery& d) {
            if (d.text() == "throw") throw std::runtime_error("deliver threw on purpose");
            inbox.add(i, d.text());
        };
        cb.forward = [&forward_drops](pastry::NodeRef&, pastry::ForwardMsg& m) {
            if (m.payload() == "forward-throws" && m.hops() == 0)
                throw std::logic_error("forward threw on purpose");
            if (m.payload() == "drop" && m.hops() == 0) {
                forward_drops++;
                return pastry::Action::Drop;
            }
            return pastry::Action::Continue;
        };
        pastry::Config cfg;
        cfg.id(id).network(3);
        nodes.emplace_back(rt, cfg, std::move(cb));  // moves Nodes when the vector grows
        if (i == 0) {
            nodes[0].start();
            nodes[0].wait_joined(std::chrono::seconds(10));
        } else {
            nodes[static_cast<size_t>(i)].join({nodes[0].addr()}, std::chrono::seconds(30));
        }
        CHECK(nodes[static_cast<size_t>(i)].id() == id);
    }
    WAIT_UNTIL(nodes[0].neighbor_set(8).size() == n - 1 && nodes[1].neighbor_set(8).size() == n - 1 &&
                   nodes[2].neighbor_set(8).size() == n - 1 && nodes[3].neighbor_set(8).size() == n - 1,
               30000u);

    uint64_t seed = 5;
    std::map<std::string, size_t> roots;
    for (int m = 0; m < 20; m++) {
        pastry::Id key(id_from_u64s(rng_next(&seed), rng_next(&seed)));
        std::string text = "msg" + std::to_string(m);
        nodes[static_cast<size_t>(m % n)].route(key, text);
        roots[text] = oracle_root(&key.raw, ids.data(), ids.size());
    }
    WAIT_UNTIL(inbox.size() == 20, 30000u);
    for (auto& r : roots) CHECK(inbox.find(r.first) == static_cast<int>(r.second));

    // Upcalls that throw: caught, counted, the node goes on; a throwing forward drops.
    pastry::Id key(ids[1]);
    nodes[0].route(key, "throw");
    nodes[0].route(key, "forward-throws");
    nodes[0].route(key, "drop");
    nodes[0].route(key, "after");
    WAIT_UNTIL(inbox.find("after") == 1, 30000u);
    WAIT_UNTIL(nodes[1].callback_errors() == 1 && nodes[0].callback_errors() == 1, 30000u);
    CHECK(forward_drops == 1);
    CHECK(inbox.find("forward-throws") == -1 && inbox.find("drop") == -1);

    // Direct send and queries.
    nodes[2].route_direct(nodes[3].peer(), "direct");
    WAIT_UNTIL(inbox.find("direct") == 3, 30000u);
    auto replicas = nodes[1].replica_set(key, 1);
    CHECK(replicas.size() == 2 && replicas[0].id == key);
    CHECK(nodes[1].range(key, 0).has_value());
    CHECK(nodes[1].stats().delivered >= 1);

    // Errors carry their code.
    expect_error(PASTRY_ERR_BAD_HEX, [] { pastry::Id::from_hex("nope"); });
    expect_error(PASTRY_ERR_BAD_ADDRESS, [] { pastry::Addr::parse("nowhere"); });
    expect_error(PASTRY_ERR_PAYLOAD_TOO_LARGE,
                 [&] { nodes[0].route(key, std::string(20000, 'x')); });
    expect_error(PASTRY_ERR_INVALID_CONFIG, [] { pastry::Config().leaf_set_size(3); });
    expect_error(PASTRY_ERR_ALREADY_STARTED, [&] { nodes[0].start(); });

    // Shutdown releases the upcalls; the rest go with the runtime and the Node destructors.
    nodes[3].shutdown(std::chrono::seconds(10));
    CHECK(nodes[3].callbacks_dropped());
    expect_error(PASTRY_ERR_STOPPED, [&] { nodes[3].route(key, "late"); });

    // Abort: no goodbye, the upcalls are released at once, later calls report STOPPED.
    nodes[2].abort(std::chrono::seconds(10));
    CHECK(nodes[2].callbacks_dropped());
    expect_error(PASTRY_ERR_STOPPED, [&] { nodes[2].route(key, "late"); });
    expect_error(PASTRY_ERR_STOPPED, [&] { nodes[2].abort(std::chrono::seconds(1)); });
    CHECK(pastry::Id::hash("abc").hex() == "ba7816bf8f01cfea414140de5dae2223");
}

void test_driven_nodes() {
    pastry::Config ca, cb;
    ca.bind("127.0.0.1:42001").id(pastry::Id(id_from_u64s(1, 0))).seed(1);
    cb.bind("127.0.0.1:42002").id(pastry::Id(id_from_u64s(0x8000000000000000ull, 0))).seed(2);
    int forwards = 0;
    pastry::DrivenNode a(ca, [&forwards](pastry::NodeRef&, pastry::ForwardMsg&) {
        forwards++;
        return pastry::Action::Continue;
    });
    pastry::DrivenNode b(cb);
    pastry::DrivenNode* all[2] = {&a, &b};
    uint64_t now = 0;
    std::vector<std::string> delivered_at_b;
    auto pump = [&] {
        for (int round = 0; round < 200; round++) {
            bool moved = false;
            for (int i = 0; i < 2; i++) {
                std::vector<uint8_t> buf;
                pastry::Addr dst;
                while (all[i]->poll_transmit(buf, dst)) {
                    moved = true;
                    for (int j = 0; j < 2; j++)
                        if (all[j]->addr().str() == dst.str())
                            all[j]->handle_datagram(all[i]->addr(), buf, now);
                }
                pastry_event ev;
                std::vector<uint8_t> payload;
                while (all[i]->poll_event(ev, payload))
                    if (i == 1 && ev.kind == PASTRY_EVENT_DELIVERED)
                        delivered_at_b.emplace_back(payload.begin(), payload.end());
            }
            if (moved) continue;
            auto ta = a.poll_timeout(), tb = b.poll_timeout();
            uint64_t next = UINT64_MAX;
            if (ta) next = *ta;
            if (tb && *tb < next) next = *tb;
            if (next == UINT64_MAX || b.phase() == PASTRY_PHASE_ACTIVE) return;
            now = next > now ? next : now;
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
    };
    a.start();
    b.start_join({a.addr()});
    pump();
    CHECK(b.phase() == PASTRY_PHASE_ACTIVE);
    a.route(b.id(), "hello b");
    pump();
    CHECK(delivered_at_b.size() == 1 && delivered_at_b[0] == "hello b");
    CHECK(forwards >= 1);
}

}  // namespace

int main() {
    watchdog(120);
    test_runtime_nodes();
    test_driven_nodes();
    printf("test_wrapper: all checks passed\n");
    return 0;
}
