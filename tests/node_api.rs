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
