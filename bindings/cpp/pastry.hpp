// pastry.hpp: a header-only C++17 RAII wrapper over the C API of pastry (pastry.h).
//
//   pastry::Runtime rt;
//   pastry::Callbacks cb;
//   cb.deliver = [](pastry::NodeRef&, const pastry::Delivery& d) { std::cout << d.text(); };
//   pastry::Node a(rt, pastry::Config(), cb);
//   a.start();
//   a.wait_joined(std::chrono::seconds(5));
//   a.route(pastry::Id::from_hex("0123456789abcdef0123456789abcdef"), "hello");
//
// - Every failing call throws pastry::Error, which carries the pastry_result code.
// - Objects own their C handle and release it in their destructor (move-only).
// - Upcalls are std::function objects. They run on the runtime's event-loop thread (see
//   pastry_callbacks in pastry.h for what may be called from them). An exception thrown by an
//   upcall never crosses into the library: the trampoline catches it, counts it
//   (Node::callback_errors()), reports it on std::cerr, and (for forward) drops the message.
//
// Link with -lpastry.
#ifndef PASTRY_HPP
#define PASTRY_HPP

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pastry.h"

namespace pastry {

/// A failed call: what() is the library's text for the code, code() the pastry_result.
class Error : public std::runtime_error {
public:
    explicit Error(pastry_result code, const std::string& call = std::string())
        : std::runtime_error((call.empty() ? std::string() : call + ": ") +
                             pastry_result_str(static_cast<uint32_t>(code))),
          code_(code) {}
    pastry_result code() const noexcept { return code_; }

private:
    pastry_result code_;
};

namespace detail {
inline void check(pastry_result rc, const char* call) {
    if (rc != PASTRY_OK) throw Error(rc, call);
}
inline uint32_t millis(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms < 0) return 0;
    if (ms > 0xffffffffLL) return 0xffffffffu;
    return static_cast<uint32_t>(ms);
}
}  // namespace detail

/// A 128-bit id or key (big-endian bytes).
struct Id {
    pastry_id raw{};

    Id() = default;
    explicit Id(const pastry_id& r) : raw(r) {}
    static Id from_hex(const std::string& hex) {
        Id id;
        detail::check(pastry_id_from_hex(hex.c_str(), &id.raw), "pastry_id_from_hex");
        return id;
    }
    /// The key of a name or of content: the first 16 bytes of its SHA-256 (pastry_id_hash).
    static Id hash(std::string_view data) {
        Id id;
        detail::check(pastry_id_hash(reinterpret_cast<const uint8_t*>(data.data()), data.size(),
                                     &id.raw),
                      "pastry_id_hash");
        return id;
    }
    std::string hex() const {
        char buf[PASTRY_ID_HEX_BUF];
        detail::check(pastry_id_to_hex(&raw, buf, sizeof buf), "pastry_id_to_hex");
        return std::string(buf);
    }
    bool operator==(const Id& o) const { return std::memcmp(raw.bytes, o.raw.bytes, 16) == 0; }
    bool operator!=(const Id& o) const { return !(*this == o); }
    bool operator<(const Id& o) const { return std::memcmp(raw.bytes, o.raw.bytes, 16) < 0; }
};

/// A UDP socket address.
struct Addr {
    pastry_addr raw{};

    Addr() = default;
    explicit Addr(const pastry_addr& r) : raw(r) {}
    static Addr parse(const std::string& text) {
        Addr a;
        detail::check(pastry_addr_parse(text.c_str(), &a.raw), "pastry_addr_parse");
        return a;
    }
    std::string str() const {
        char buf[PASTRY_ADDR_STR_BUF];
        detail::check(pastry_addr_to_str(&raw, buf, sizeof buf), "pastry_addr_to_str");
        return std::string(buf);
    }
};

/// A node as others address it.
struct Peer {
    Id id;
    Addr addr;

    Peer() = default;
    explicit Peer(const pastry_peer& p) : id(p.id), addr(p.addr) {}
    pastry_peer raw() const {
        pastry_peer p;
        p.id = id.raw;
        p.addr = addr.raw;
        return p;
    }
};

/// A message delivered at this node (its bytes copied).
struct Delivery {
    Id key;
    Peer source;
    uint64_t msg_id = 0;
    uint32_t hops = 0;
    std::vector<uint8_t> payload;

    std::string text() const { return std::string(payload.begin(), payload.end()); }
};

/// What forward decides.
enum class Action : uint32_t { Continue = PASTRY_FORWARD_CONTINUE, Drop = PASTRY_FORWARD_DROP };

/// The message in a forward upcall: read and change it during the call only.
class ForwardMsg {
public:
    explicit ForwardMsg(pastry_forward* m) : m_(m) {}
    Id key() const { return Id(m_->key); }
    void set_key(const Id& k) { m_->key = k.raw; }
    Peer source() const { return Peer(m_->source); }
    uint64_t msg_id() const { return m_->msg_id; }
    uint32_t hops() const { return m_->hops; }
    /// The next hop, or nothing when this node is the root and delivers the message.
    std::optional<Peer> next_hop() const {
        if (!m_->has_next_hop) return std::nullopt;
        return Peer(m_->next_hop);
    }
    void set_next_hop(const Peer& p) {
        m_->next_hop = p.raw();
        m_->has_next_hop = true;
    }
    void deliver_here() { m_->has_next_hop = false; }
    std::string_view payload() const {
        return std::string_view(reinterpret_cast<const char*>(m_->payload), m_->payload_len);
    }
    void set_payload(std::string_view bytes) {
        detail::check(pastry_forward_set_payload(m_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                                 bytes.size()),
                      "pastry_forward_set_payload");
    }

private:
    pastry_forward* m_;
};

/// Configuration builder (copied by the node constructors).
class Config {
public:
    Config() { detail::check(pastry_config_new(&c_), "pastry_config_new"); }
    ~Config() { pastry_config_free(c_); }
    Config(const Config&) = delete;
    Config& operator=(const Config&) = delete;
    Config(Config&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    Config& operator=(Config&& o) noexcept {
        std::swap(c_, o.c_);
        return *this;
    }

    Config& bind(const std::string& addr) { return set(pastry_config_set_bind(c_, addr.c_str())); }
    Config& id(const Id& id) { return set(pastry_config_set_id(c_, &id.raw)); }
    Config& digit_bits(uint32_t b) { return set(pastry_config_set_digit_bits(c_, b)); }
    Config& leaf_set_size(uint32_t l) { return set(pastry_config_set_leaf_set_size(c_, l)); }
    Config& network(uint32_t n) { return set(pastry_config_set_network(c_, n)); }
    Config& max_payload(size_t m) { return set(pastry_config_set_max_payload(c_, m)); }
    /// The budget of messages in flight (route throws PASTRY_ERR_OVERLOADED past it).
    Config& max_in_flight(size_t m) { return set(pastry_config_set_max_in_flight(c_, m)); }
    Config& seed(uint64_t s) { return set(pastry_config_set_seed(c_, s)); }
    Config& leaf_probe_period(std::chrono::milliseconds d) {
        return set(pastry_config_set_leaf_probe_period_ms(c_, static_cast<uint64_t>(d.count())));
    }
    Config& join_timeout(std::chrono::milliseconds d, uint32_t attempts) {
        return set(pastry_config_set_join_timeout_ms(c_, static_cast<uint64_t>(d.count()),
                                                     attempts));
    }
    const pastry_config* get() const { return c_; }

private:
    Config& set(pastry_result rc) {
        detail::check(rc, "pastry_config_set");
        return *this;
    }
    pastry_config* c_ = nullptr;
};

/// One event-loop thread serving nodes. Destroying it stops every node on it.
class Runtime {
public:
    Runtime() { detail::check(pastry_runtime_new(&rt_), "pastry_runtime_new"); }
    ~Runtime() {
        if (rt_ != nullptr && pastry_runtime_free(rt_) != PASTRY_OK)
            std::cerr << "pastry: a Runtime was destroyed inside a callback; it is leaked\n";
    }
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;
    Runtime(Runtime&& o) noexcept : rt_(std::exchange(o.rt_, nullptr)) {}
    pastry_runtime* get() const { return rt_; }

private:
    pastry_runtime* rt_ = nullptr;
};

class NodeRef;

/// The upcalls of a node (any may be empty).
struct Callbacks {
    std::function<void(NodeRef&, const Delivery&)> deliver;
    std::function<Action(NodeRef&, ForwardMsg&)> forward;
    std::function<void(NodeRef&, const Peer&, bool joined)> update;
    std::function<void(NodeRef&, const Id& key, uint64_t msg_id, uint32_t reason)> undeliverable;
};

/// A node's operations, without ownership: what upcalls receive, and the base of Node.
class NodeRef {
public:
    explicit NodeRef(pastry_node* n) : n_(n) {}
    pastry_node* get() const { return n_; }

    void start() { detail::check(pastry_node_start(n_), "pastry_node_start"); }
    void start_join(const std::vector<Addr>& boot) {
        std::vector<pastry_addr> raw = raws(boot);
        detail::check(pastry_node_start_join(n_, raw.data(), raw.size()),
                      "pastry_node_start_join");
    }
    void join(const std::vector<Addr>& boot, std::chrono::milliseconds timeout) {
        std::vector<pastry_addr> raw = raws(boot);
        detail::check(pastry_node_join(n_, raw.data(), raw.size(), detail::millis(timeout)),
                      "pastry_node_join");
    }
    void wait_joined(std::chrono::milliseconds timeout) {
        detail::check(pastry_node_wait_joined(n_, detail::millis(timeout)),
                      "pastry_node_wait_joined");
    }
    void shutdown(std::chrono::milliseconds timeout) {
        detail::check(pastry_node_shutdown(n_, detail::millis(timeout)), "pastry_node_shutdown");
    }
    /// Stops the node abruptly, like a crash: no goodbye (pastry_node_abort).
    void abort(std::chrono::milliseconds timeout) {
        detail::check(pastry_node_abort(n_, detail::millis(timeout)), "pastry_node_abort");
    }
    pastry_phase phase() const {
        pastry_phase p;
        detail::check(pastry_node_phase(n_, &p), "pastry_node_phase");
        return p;
    }

    void route(const Id& key, std::string_view msg) { route(&key, msg, nullptr); }
    void route_direct(const Peer& hint, std::string_view msg) { route(nullptr, msg, &hint); }
    void route(const Id* key, std::string_view msg, const Peer* hint) {
        pastry_peer h{};
        if (hint != nullptr) h = hint->raw();
        detail::check(pastry_route(n_, key != nullptr ? &key->raw : nullptr,
                                   reinterpret_cast<const uint8_t*>(msg.data()), msg.size(),
                                   hint != nullptr ? &h : nullptr),
                      "pastry_route");
    }

    Id id() const {
        Id id;
        detail::check(pastry_node_id(n_, &id.raw), "pastry_node_id");
        return id;
    }
    Addr addr() const {
        Addr a;
        detail::check(pastry_node_addr(n_, &a.raw), "pastry_node_addr");
        return a;
    }
    Peer peer() const {
        Peer p;
        p.id = id();
        p.addr = addr();
        return p;
    }
    pastry_stats stats() const {
        pastry_stats s{};
        detail::check(pastry_node_stats(n_, &s, sizeof s), "pastry_node_stats");
        return s;
    }

    std::vector<Peer> local_lookup(const Id& key, size_t num, bool safe) const {
        std::vector<pastry_peer> out(num);
        size_t count = out.size();
        detail::check(pastry_node_local_lookup(n_, &key.raw, safe, out.data(), &count),
                      "pastry_node_local_lookup");
        return peers(out, count);
    }
    std::vector<Peer> neighbor_set(size_t num) const {
        std::vector<pastry_peer> out(num);
        size_t count = out.size();
        detail::check(pastry_node_neighbor_set(n_, out.data(), &count),
                      "pastry_node_neighbor_set");
        return peers(out, count);
    }
    std::vector<Peer> replica_set(const Id& key, uint32_t max_rank) const {
        std::vector<pastry_peer> out(static_cast<size_t>(max_rank) + 1);
        size_t count = out.size();
        detail::check(pastry_node_replica_set(n_, &key.raw, max_rank, out.data(), &count),
                      "pastry_node_replica_set");
        return peers(out, count);
    }
    /// The key range [lo, hi] of `node` at `rank`, or nothing when it cannot be determined.
    std::optional<std::pair<Id, Id>> range(const Id& node, uint32_t rank) const {
        Id lo, hi;
        pastry_result rc = pastry_node_range(n_, &node.raw, rank, &lo.raw, &hi.raw);
        if (rc == PASTRY_NONE) return std::nullopt;
        detail::check(rc, "pastry_node_range");
        return std::make_pair(lo, hi);
    }

protected:
    pastry_node* n_ = nullptr;

private:
    static std::vector<pastry_addr> raws(const std::vector<Addr>& v) {
        std::vector<pastry_addr> r;
        r.reserve(v.size());
        for (const Addr& a : v) r.push_back(a.raw);
        return r;
    }
    static std::vector<Peer> peers(const std::vector<pastry_peer>& v, size_t count) {
        std::vector<Peer> r;
        r.reserve(count);
        for (size_t i = 0; i < count; i++) r.emplace_back(v[i]);
        return r;
    }
};

namespace detail {

/// What the C callbacks' userdata points to (a heap shared_ptr, deleted by drop).
struct State {
    Callbacks cb;
    std::atomic<uint64_t> errors{0};
    std::atomic<bool> dropped{false};
};

inline void report(State& s, const char* where, const char* what) {
    s.errors.fetch_add(1);
    std::cerr << "pastry: exception in the " << where << " upcall: " << what << '\n';
}

template <typename F>
inline bool guarded(State& s, const char* where, F&& f) noexcept {
    try {
        f();
        return true;
    } catch (const std::exception& e) {
        report(s, where, e.what());
    } catch (...) {
        report(s, where, "(not a std::exception)");
    }
    return false;
}

inline State& state(void* ud) { return **static_cast<std::shared_ptr<State>*>(ud); }

inline void on_deliver(void* ud, pastry_node* node, const pastry_delivery* m) {
    State& s = state(ud);
    if (!s.cb.deliver) return;
    guarded(s, "deliver", [&] {
        Delivery d;
        d.key = Id(m->key);
        d.source = Peer(m->source);
        d.msg_id = m->msg_id;
        d.hops = m->hops;
        if (m->payload_len > 0) d.payload.assign(m->payload, m->payload + m->payload_len);
        NodeRef ref(node);
        s.cb.deliver(ref, d);
    });
}

inline uint32_t on_forward(void* ud, pastry_node* node, pastry_forward* m) {
    State& s = state(ud);
    if (!s.cb.forward) return PASTRY_FORWARD_CONTINUE;
    Action action = Action::Drop;
    guarded(s, "forward", [&] {
        NodeRef ref(node);
        ForwardMsg msg(m);
        action = s.cb.forward(ref, msg);
    });
    return static_cast<uint32_t>(action);
}

inline void on_update(void* ud, pastry_node* node, const pastry_peer* p, bool joined) {
    State& s = state(ud);
    if (!s.cb.update) return;
    guarded(s, "update", [&] {
        NodeRef ref(node);
        s.cb.update(ref, Peer(*p), joined);
    });
}

inline void on_undeliverable(void* ud, pastry_node* node, const pastry_id* key, uint64_t id,
                             uint32_t reason) {
    State& s = state(ud);
    if (!s.cb.undeliverable) return;
    guarded(s, "undeliverable", [&] {
        NodeRef ref(node);
        s.cb.undeliverable(ref, Id(*key), id, reason);
    });
}

inline void on_drop(void* ud) {
    auto* holder = static_cast<std::shared_ptr<State>*>(ud);
    (*holder)->dropped.store(true);
    delete holder;
}

inline pastry_callbacks make_callbacks(const std::shared_ptr<State>& s) {
    pastry_callbacks c;
    std::memset(&c, 0, sizeof c);
    c.userdata = new std::shared_ptr<State>(s);
    c.deliver = on_deliver;
    c.forward = on_forward;
    c.update = on_update;
    c.undeliverable = on_undeliverable;
    c.drop = on_drop;
    return c;
}

}  // namespace detail

/// A node run by a Runtime, owning its handle: destroying it leaves the overlay gracefully and
/// frees the node (do not destroy a Node inside one of its upcalls).
class Node : public NodeRef {
public:
    Node(Runtime& rt, const Config& cfg, Callbacks cb = Callbacks())
        : NodeRef(nullptr), state_(std::make_shared<detail::State>()) {
        state_->cb = std::move(cb);
        pastry_callbacks c = detail::make_callbacks(state_);
        // On failure the library has already run drop (deleting the userdata).
        detail::check(pastry_node_new(rt.get(), cfg.get(), &c, &n_), "pastry_node_new");
    }
    ~Node() { release(); }
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    Node(Node&& o) noexcept : NodeRef(std::exchange(o.n_, nullptr)), state_(std::move(o.state_)) {}
    Node& operator=(Node&& o) noexcept {
        if (this != &o) {
            release();
            n_ = std::exchange(o.n_, nullptr);
            state_ = std::move(o.state_);
        }
        return *this;
    }

    /// Exceptions thrown by this node's upcalls (caught and reported).
    uint64_t callback_errors() const { return state_ ? state_->errors.load() : 0; }
    /// Whether the library has released the upcalls (after the node left or was freed).
    bool callbacks_dropped() const { return state_ && state_->dropped.load(); }

private:
    void release() noexcept {
        if (n_ != nullptr && pastry_node_free(n_) != PASTRY_OK)
            std::cerr << "pastry: a Node was destroyed inside a callback; it is leaked\n";
        n_ = nullptr;
    }
    std::shared_ptr<detail::State> state_;
};

/// A caller-driven node (no runtime): feed it datagrams and timeouts, take its outputs.
class DrivenNode : public NodeRef {
public:
    explicit DrivenNode(const Config& cfg, std::function<Action(NodeRef&, ForwardMsg&)> fwd = {})
        : NodeRef(nullptr), state_(std::make_shared<detail::State>()) {
        state_->cb.forward = std::move(fwd);
        pastry_callbacks c = detail::make_callbacks(state_);
        detail::check(pastry_node_new_driven(cfg.get(), &c, &n_), "pastry_node_new_driven");
    }
    ~DrivenNode() {
        if (n_ != nullptr) pastry_node_free(n_);
    }
    DrivenNode(const DrivenNode&) = delete;
    DrivenNode& operator=(const DrivenNode&) = delete;

    void handle_datagram(const Addr& from, const std::vector<uint8_t>& d, uint64_t now_us) {
        detail::check(pastry_node_handle_datagram(n_, &from.raw, d.data(), d.size(), now_us),
                      "pastry_node_handle_datagram");
    }
    void handle_timeout(uint64_t now_us) {
        detail::check(pastry_node_handle_timeout(n_, now_us), "pastry_node_handle_timeout");
    }
    /// The next datagram to send, or false when there is none.
    bool poll_transmit(std::vector<uint8_t>& out, Addr& dst) {
        out.resize(PASTRY_MAX_DATAGRAM);
        size_t len = 0;
        pastry_result rc = pastry_node_poll_transmit(n_, out.data(), out.size(), &len, &dst.raw);
        if (rc == PASTRY_NONE) return false;
        detail::check(rc, "pastry_node_poll_transmit");
        out.resize(len);
        return true;
    }
    std::optional<uint64_t> poll_timeout() {
        uint64_t at = 0;
        pastry_result rc = pastry_node_poll_timeout(n_, &at);
        if (rc == PASTRY_NONE) return std::nullopt;
        detail::check(rc, "pastry_node_poll_timeout");
        return at;
    }
    /// The next event (a delivery's bytes in `payload`), or false when there is none.
    bool poll_event(pastry_event& ev, std::vector<uint8_t>& payload) {
        payload.resize(PASTRY_MAX_PAYLOAD_LIMIT);
        pastry_result rc = pastry_node_poll_event(n_, &ev, payload.data(), payload.size());
        if (rc == PASTRY_NONE) return false;
        detail::check(rc, "pastry_node_poll_event");
        payload.resize(ev.kind == PASTRY_EVENT_DELIVERED ? ev.payload_len : 0);
        return true;
    }
    uint64_t callback_errors() const { return state_->errors.load(); }

private:
    std::shared_ptr<detail::State> state_;
};

}  // namespace pastry

#endif  // PASTRY_HPP
