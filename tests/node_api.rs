//! The node's application surface, driven through the simulator: errors, the forward upcall,
//! direct sends, graceful leave, and hostile input.

use bytes::Bytes;
use pastry::node::{Config, Event, ForwardAction, ForwardCtx, Forwarder, Node, RouteError};
use pastry::sim::{NodeIdx, Sim, SimConfig};
use pastry::wire::{self, undeliverable_reason, Message};
use pastry::{Duration, Id, Instant, NodeHandle};

fn overlay(n: usize) -> Sim {
    let mut s = Sim::new(SimConfig::default());
    s.grow(n, Duration::from_millis(50));
    s.run_for(Duration::from_secs(20));
    assert_eq!(s.report.joined as usize, n);
    s
}

#[test]
fn route_refuses_oversized_payloads_and_inactive_nodes() {
    let cfg = Config {
        max_payload: 100,
        ..Config::default()
    };
    let mut n = Node::new(cfg, "127.0.0.1:1".parse().unwrap()).unwrap();
    let t = Instant::ZERO;
    assert_eq!(
        n.route(t, Some(Id(1)), vec![0u8; 10], None),
        Err(RouteError::NotActive)
    );
    n.start_alone(t);
    assert_eq!(
        n.route(t, Some(Id(1)), vec![0u8; 101], None),
        Err(RouteError::PayloadTooLarge { len: 101, max: 100 })
    );
    assert_eq!(
        n.route(t, None, Bytes::new(), None),
        Err(RouteError::NoDestination)
    );
    assert!(n.route(t, Some(Id(1)), vec![0u8; 100], None).is_ok());
}

/// Records what the forward upcall saw and applies a policy.
struct Policy {
    drop_all: bool,
    redirect_to: Option<NodeHandle>,
}

impl Forwarder for Policy {
    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        if self.drop_all {
            return ForwardAction::Drop;
        }
        if let Some(h) = self.redirect_to {
            ctx.next_hop = Some(h);
            *ctx.payload = Bytes::from_static(b"redirected");
        }
        ForwardAction::Forward
    }
}

fn delivery_of(events: &[(NodeIdx, Event)], msg_id: u64) -> Option<(NodeIdx, Bytes)> {
    events.iter().find_map(|(i, e)| match e {
        Event::Delivered {
            msg_id: m, payload, ..
        } if *m == msg_id => Some((*i, payload.clone())),
        _ => None,
    })
}

#[test]
fn forward_upcall_can_drop_and_redirect() {
    let mut s = overlay(30);
    s.record_events();
    let src = NodeIdx(3);
    let target = NodeIdx(17);
    let target_handle = s.node(target).unwrap().handle();
    // A key whose root is neither the source nor the target.
    let key = (0..)
        .map(|k| Id(0x1234_5678_9abc_def0_u128.wrapping_mul(k + 1)))
        .find(|&k| {
            let root = s.oracle().root(k).unwrap();
            root != s.node(src).unwrap().id() && root != target_handle.id
        })
        .unwrap();
    // Unchanged, the message reaches the root of its key.
    let now = s.now();
    let id = s
        .node_mut(src)
        .unwrap()
        .route(now, Some(key), &b"x"[..], None)
        .unwrap();
    s.pump(src);
    s.run_for(Duration::from_secs(5));
    let (at, _) = delivery_of(&s.take_events(), id).expect("delivered");
    assert_eq!(s.node(at).unwrap().id(), s.oracle().root(key).unwrap());

    // Redirected at the source, it goes to `target`, with the payload the upcall wrote.
    s.node_mut(src)
        .unwrap()
        .set_forwarder(Some(Box::new(Policy {
            drop_all: false,
            redirect_to: Some(target_handle),
        })));
    let now = s.now();
    let id = s
        .node_mut(src)
        .unwrap()
        .route(now, Some(key), &b"x"[..], None)
        .unwrap();
    s.pump(src);
    s.run_for(Duration::from_secs(5));
    let events = s.take_events();
    let (at, payload) = delivery_of(&events, id).expect("delivered somewhere");
    // The target forwards it on to the root (its own forwarder is the default one)...
    assert_eq!(s.node(at).unwrap().id(), s.oracle().root(key).unwrap());
    assert_eq!(&payload[..], b"redirected");
    // ...after passing through the target: the target forwarded (or was the root of) one message.
    assert!(s.node(target).unwrap().stats().forwarded >= 1);

    // A dropping forwarder at the source stops the message there.
    s.node_mut(src)
        .unwrap()
        .set_forwarder(Some(Box::new(Policy {
            drop_all: true,
            redirect_to: None,
        })));
    let now = s.now();
    let id = s
        .node_mut(src)
        .unwrap()
        .route(now, Some(key), &b"y"[..], None)
        .unwrap();
    s.pump(src);
    s.run_for(Duration::from_secs(5));
    assert!(
        delivery_of(&s.take_events(), id).is_none(),
        "a dropped message arrived"
    );
    assert_eq!(s.node(src).unwrap().pending_len(), 0);
}

#[test]
fn graceful_leave_updates_the_leaf_set_at_once() {
    let mut s = overlay(40);
    let leaver = NodeIdx(10);
    let id = s.node(leaver).unwrap().id();
    let neighbours: Vec<NodeIdx> = s
        .live()
        .filter(|&i| s.node(i).unwrap().leaf_set().contains(id))
        .collect();
    assert!(!neighbours.is_empty());
    s.leave(leaver);
    // One network latency later (well under a probe period) nobody holds it any more.
    s.run_for(Duration::from_millis(400));
    for i in neighbours {
        assert!(
            !s.node(i).unwrap().leaf_set().contains(id),
            "{i:?} still holds the node that left"
        );
    }
}

#[test]
fn direct_send_to_a_dead_hint_is_reported_undeliverable() {
    let mut s = overlay(20);
    let src = NodeIdx(2);
    let dead = NodeIdx(9);
    let dead_handle = s.node(dead).unwrap().handle();
    s.record_events();
    s.crash(dead);
    let now = s.now();
    let msg_id = s
        .node_mut(src)
        .unwrap()
        .route(now, None, &b"hi"[..], Some(dead_handle))
        .unwrap();
    s.pump(src);
    s.run_for(Duration::from_secs(120));
    let n = s.node(src).unwrap();
    assert!(n.stats().failures_detected >= 1);
    assert_eq!(n.pending_len(), 0);
    let reported = s.take_events().into_iter().any(|(i, e)| {
        i == src
            && e == Event::Undeliverable {
                msg_id,
                key: dead_handle.id,
                reason: undeliverable_reason::UNREACHABLE,
            }
    });
    assert!(reported, "the source was not told");
}

#[test]
fn hostile_datagrams_are_counted_and_dropped() {
    let mut n = Node::new(Config::default(), "127.0.0.1:1".parse().unwrap()).unwrap();
    let t = Instant::ZERO;
    n.start_alone(t);
    let from = "127.0.0.1:2".parse().unwrap();
    n.handle_datagram(t, from, b"");
    n.handle_datagram(t, from, &[0xff; 40]);
    let mut frame = Vec::new();
    wire::encode(
        7,
        Id(5),
        &Message::Ping {
            nonce: 1,
            sent_at: 0,
            active: true,
        },
        &mut frame,
    );
    n.handle_datagram(t, from, &frame); // another network
    wire::encode(
        0,
        n.id(),
        &Message::Ping {
            nonce: 1,
            sent_at: 0,
            active: true,
        },
        &mut frame,
    );
    n.handle_datagram(t, from, &frame); // our own id as sender
    let st = n.stats();
    assert_eq!(st.bad_frames, 2);
    assert_eq!(st.foreign_frames, 2);
    let mut buf = Vec::new();
    assert!(
        n.poll_transmit(&mut buf).is_none(),
        "answered a hostile frame"
    );
    // A good ping from this network is answered.
    wire::encode(
        0,
        Id(5),
        &Message::Ping {
            nonce: 1,
            sent_at: 0,
            active: true,
        },
        &mut frame,
    );
    n.handle_datagram(t, from, &frame);
    assert_eq!(n.poll_transmit(&mut buf), Some(from));
}

#[test]
fn duplicate_hop_transmissions_are_acked_but_delivered_once() {
    let mut n = Node::new(Config::default(), "127.0.0.1:1".parse().unwrap()).unwrap();
    let t = Instant::ZERO;
    n.start_alone(t);
    while n.poll_event().is_some() {}
    let from: std::net::SocketAddr = "127.0.0.1:2".parse().unwrap();
    let msg = Message::Routed {
        msg_id: 77,
        key: n.id(),
        source: NodeHandle::new(Id(5), from),
        hops: 1,
        flags: Default::default(),
        payload: Bytes::from_static(b"once"),
    };
    let mut frame = Vec::new();
    wire::encode(0, Id(5), &msg, &mut frame);
    n.handle_datagram(t, from, &frame);
    n.handle_datagram(t, from, &frame);
    let mut acks = 0;
    let mut buf = Vec::new();
    while n.poll_transmit(&mut buf).is_some() {
        if let Ok((_, Message::Ack { msg_id: 77, .. })) = wire::decode(&buf) {
            acks += 1;
        }
    }
    assert_eq!(acks, 2, "every copy is acknowledged");
    let deliveries = std::iter::from_fn(|| n.poll_event())
        .filter(|e| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(deliveries, 1);
    assert_eq!(n.stats().duplicates, 1);
}

/// Drives one node by hand: a fake peer `B` acknowledges every hop but never delivers, so the
/// source retries end to end (each attempt a fresh transmission) and finally reports LOST.
#[test]
fn unacknowledged_deliveries_are_retried_then_reported_lost() {
    use pastry::wire::RoutedFlags;
    let me: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let b_addr: std::net::SocketAddr = "127.0.0.1:2".parse().unwrap();
    let cfg = Config {
        id: Some(Id(1000)),
        ..Config::default()
    };
    let mut a = Node::new(cfg.clone(), me).unwrap();
    let mut t = Instant::ZERO;
    a.start_alone(t);
    // B announces itself; A challenges it with a ping, and B's pong puts it in A's leaf set.
    let b = Id(2000);
    let mut frame = Vec::new();
    let announce = Message::LeafSetRequest {
        nonce: 9,
        leaf_set: vec![],
    };
    wire::encode(0, b, &announce, &mut frame);
    a.handle_datagram(t, b_addr, &frame);
    assert!(!a.leaf_set().contains(b), "admitted before answering");
    let mut buf = Vec::new();
    let mut pongs = Vec::new();
    while let Some(dst) = a.poll_transmit(&mut buf) {
        if let Ok((_, Message::Ping { nonce, sent_at, .. })) = wire::decode(&buf) {
            assert_eq!(dst, b_addr);
            pongs.push(Message::Pong { nonce, sent_at });
        }
    }
    assert_eq!(pongs.len(), 1, "one challenge");
    wire::encode(0, b, &pongs[0], &mut frame);
    a.handle_datagram(t, b_addr, &frame);
    assert!(a.leaf_set().contains(b));
    while a.poll_transmit(&mut buf).is_some() {}
    while a.poll_event().is_some() {}

    let msg_id = a.route(t, Some(b), &b"x"[..], None).unwrap();
    let mut attempts = Vec::new();
    let mut lost = false;
    for _ in 0..200 {
        // Acknowledge every hop transmission to B, as if B took the message and then died.
        while let Some(dst) = a.poll_transmit(&mut buf) {
            if let Ok((
                _,
                Message::Routed {
                    msg_id: m,
                    hops,
                    flags,
                    ..
                },
            )) = wire::decode(&buf)
            {
                assert_eq!((dst, m), (b_addr, msg_id));
                if !attempts.contains(&flags.attempt()) {
                    attempts.push(flags.attempt());
                }
                wire::encode(0, b, &Message::Ack { msg_id: m, hops }, &mut frame);
                a.handle_datagram(t, b_addr, &frame);
            }
        }
        while let Some(ev) = a.poll_event() {
            if let Event::Undeliverable {
                msg_id: m, reason, ..
            } = ev
            {
                assert_eq!((m, reason), (msg_id, undeliverable_reason::LOST));
                lost = true;
            }
        }
        if lost {
            break;
        }
        t = a.poll_timeout().unwrap();
        a.handle_timeout(t);
    }
    assert!(lost, "never reported");
    assert_eq!(
        attempts,
        vec![0, 1, 2, 3],
        "each retry must be a fresh transmission"
    );
    assert_eq!(a.stats().retries, 3);
    // 5 s, then 10 s and 20 s between attempts, 40 s for the last: about 75 s in all.
    assert!(t >= Instant::ZERO + Duration::from_secs(75), "{t:?}");
    let _ = RoutedFlags::default();
}

/// A root acknowledges every copy it receives end to end, and delivers once.
#[test]
fn the_root_acknowledges_every_copy_end_to_end() {
    let mut n = Node::new(Config::default(), "127.0.0.1:1".parse().unwrap()).unwrap();
    let t = Instant::ZERO;
    n.start_alone(t);
    while n.poll_event().is_some() {}
    let src: std::net::SocketAddr = "127.0.0.1:2".parse().unwrap();
    let mut frame = Vec::new();
    let mut buf = Vec::new();
    let mut acks = 0;
    for attempt in 0..3u8 {
        let msg = Message::Routed {
            msg_id: 55,
            key: n.id(),
            source: NodeHandle::new(Id(5), src),
            hops: 1,
            flags: pastry::wire::RoutedFlags::default().with_attempt(attempt),
            payload: Bytes::from_static(b"e2e"),
        };
        wire::encode(0, Id(5), &msg, &mut frame);
        n.handle_datagram(t, src, &frame);
        while n.poll_transmit(&mut buf).is_some() {
            if let Ok((_, Message::DeliveryAck { msg_id: 55 })) = wire::decode(&buf) {
                acks += 1;
            }
        }
    }
    assert_eq!(acks, 3);
    let deliveries = std::iter::from_fn(|| n.poll_event())
        .filter(|e| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(deliveries, 1);
}
