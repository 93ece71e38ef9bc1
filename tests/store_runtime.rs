//! The store on real sockets (loopback only): a few nodes in one runtime, blocking puts and
//! gets through `StoreHandle`, callbacks from an upcall. Bounded: every wait has a timeout.

use std::sync::mpsc;
use std::time::Duration;

use pastry::node::Node;
use pastry::runtime::Delivery;
use pastry::store::{name_key, Outcome, StoreApp, StoreConfig, StoreError, StoreHandle};
use pastry::{Application, Handle, Id, NodeConfig, Runtime};

const T: Duration = Duration::from_secs(10);

fn overlay(rt: &Runtime, n: usize) -> Vec<(Handle, StoreHandle)> {
    let any = "127.0.0.1:0".parse().unwrap();
    let mut nodes: Vec<(Handle, StoreHandle)> = Vec::new();
    for i in 0..n {
        let (app, store) = StoreApp::new(StoreConfig::default());
        let h = rt.add_node(NodeConfig::new(any), app).unwrap();
        store.bind(h.clone());
        if i == 0 {
            h.start_alone().unwrap();
            h.wait_joined(T).unwrap();
        } else {
            h.join(&[nodes[0].0.addr()], T).unwrap();
        }
        nodes.push((h, store));
    }
    nodes
}

#[test]
fn blocking_put_and_get_across_nodes() {
    let rt = Runtime::new().unwrap();
    let nodes = overlay(&rt, 8);
    let mut keys = Vec::new();
    for i in 0..20u32 {
        let v = format!("object {i}").repeat(50).into_bytes();
        let key = nodes[i as usize % 8].1.put(v.clone(), T).unwrap();
        keys.push((key, v));
    }
    for (j, (key, v)) in keys.iter().enumerate() {
        let got = nodes[(j + 3) % 8].1.get(*key, T).unwrap();
        assert_eq!(&got[..], &v[..]);
    }
    let copies: usize = nodes.iter().map(|(_, s)| s.with_store(|s| s.len())).sum();
    assert!(copies >= 20 * 4, "k = 4 copies each: {copies}");
    assert_eq!(nodes[1].1.get(Id(42), T).unwrap_err(), StoreError::NotFound);
    rt.shutdown();
}

/// An application of its own that holds the store and starts a put from its `deliver` upcall.
struct Mine {
    store: StoreApp,
    handle: StoreHandle,
    done: mpsc::Sender<Outcome>,
}

impl Application for Mine {
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        if msg.payload.starts_with(b"please store: ") {
            let tx = self.done.clone();
            let v = msg.payload.slice(14..);
            let _ = self.handle.put_from(node, v, move |o| {
                let _ = tx.send(o);
            });
        } else {
            self.store.deliver(node, msg);
        }
    }
    fn forward(&mut self, ctx: &mut pastry::node::ForwardCtx<'_>) -> pastry::node::ForwardAction {
        self.store.forward(ctx)
    }
    fn update(&mut self, node: &Node, peer: pastry::NodeHandle, joined: bool) {
        self.store.update(node, peer, joined)
    }
    fn joined(&mut self, node: &Node) {
        self.store.joined(node)
    }
}

#[test]
fn puts_from_an_upcall_and_named_conflicts() {
    let rt = Runtime::new().unwrap();
    let nodes = overlay(&rt, 4);
    let (store, handle) = StoreApp::new(StoreConfig::default());
    let (tx, rx) = mpsc::channel();
    let app = Mine {
        store,
        handle: handle.clone(),
        done: tx,
    };
    let any = "127.0.0.1:0".parse().unwrap();
    let h = rt.add_node(NodeConfig::new(any), app).unwrap();
    handle.bind(h.clone());
    h.join(&[nodes[0].0.addr()], T).unwrap();
    // A direct send to the new node asks it to store something from inside `deliver`.
    nodes[1]
        .0
        .route_with_hint(
            None,
            &b"please store: from an upcall"[..],
            Some(h.node_handle()),
        )
        .unwrap();
    let key = match rx.recv_timeout(T).unwrap() {
        Outcome::Put(Ok(k)) => k,
        other => panic!("{other:?}"),
    };
    assert_eq!(&nodes[2].1.get(key, T).unwrap()[..], b"from an upcall");
    // Named objects: the first put wins.
    assert_eq!(nodes[0].1.put_named(b"n", b"a", T), Ok(name_key(b"n")));
    assert_eq!(
        nodes[3].1.put_named(b"n", b"b", T),
        Err(StoreError::Conflict)
    );
    assert_eq!(&handle.get(name_key(b"n"), T).unwrap()[..], b"a");
    rt.shutdown();
}
