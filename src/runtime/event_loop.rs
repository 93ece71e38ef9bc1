//! The event loop: one thread, one `mio::Poll`, many nodes.
//!
//! Each round: poll (timeout = the earliest node deadline, zero while work is left over);
//! note readable and writable sockets; read each readable socket until `WouldBlock` (at most
//! [`READ_BATCH`] datagrams per socket per round, so one busy node cannot starve the others);
//! fire due node timers (at most [`TIMER_BATCH`] nodes per round); run queued commands (at most
//! [`COMMAND_BATCH`] per round). After every input the node's outputs are drained: datagrams are
//! sent (parked on `WouldBlock` until the socket is `WRITABLE`), events become upcalls, and its
//! next deadline goes into the loop's timer heap.

use core::net::SocketAddr;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;

use bytes::Bytes;

use super::app::{Application, Delivery};
use super::shared::{Command, JoinState, NewNode, NodeStatus, Shared};
use crate::id::{Id, NodeHandle};
use crate::node::{Event, ForwardAction, ForwardCtx, Forwarder, Node, Phase};
use crate::time::Instant;
use crate::util::FxHashSet;
use crate::wire::{Message, MessageType};

/// The waker's token; sockets use their node's token (from 1 up).
pub(super) const WAKER: Token = Token(0);
/// Datagrams read from one socket per round.
const READ_BATCH: usize = 64;
/// Nodes whose timers fire per round.
const TIMER_BATCH: usize = 256;
/// Commands run per round.
const COMMAND_BATCH: usize = 4096;
/// Datagrams parked per node while its socket is not writable; beyond it they are dropped.
const PARK_CAP: usize = 4096;
/// The largest UDP datagram.
const RECV_BUF: usize = 65_536;

/// The application, shared by the loop (deliver, update) and the node's forwarder (forward).
/// Both run on the loop thread, never at once: the lock is never contended.
type SharedApp = Arc<Mutex<Box<dyn Application>>>;

/// Calls the application's `forward` from inside the node, catching panics.
struct ForwardUpcall {
    app: SharedApp,
    status: Arc<NodeStatus>,
}

impl Forwarder for ForwardUpcall {
    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        let mut app = self.app.lock();
        match catch_unwind(AssertUnwindSafe(|| app.forward(ctx))) {
            Ok(a) => a,
            Err(_) => {
                NodeStatus::count(&self.status.upcall_panics);
                ForwardAction::Drop
            }
        }
    }
}

/// One node with its socket.
struct Slot {
    node: Node,
    socket: UdpSocket,
    app: SharedApp,
    status: Arc<NodeStatus>,
    /// Datagrams waiting for the socket to become writable, oldest first.
    parked: VecDeque<(SocketAddr, Vec<u8>)>,
    /// The deadline this slot has in the loop's heap.
    timer_at: Option<Instant>,
    /// In the loop's list of sockets that may still hold datagrams.
    ready: bool,
    /// Leaving: remove once `parked` is empty, then signal.
    leaving: Option<Option<Sender<()>>>,
    /// Messages routed through the handles that have not finished (each holds one unit of
    /// `status.in_flight`).
    in_flight: FxHashSet<u64>,
}

impl Slot {
    /// The message `msg_id` finished (acknowledged, delivered here, or undeliverable): gives
    /// back its unit of the in-flight budget if it held one.
    fn finish(&mut self, msg_id: u64) {
        if self.in_flight.remove(&msg_id) {
            self.status.release_in_flight();
        }
    }

    /// A received datagram: if it is the root's acknowledgement of a message in flight, that
    /// message has finished. (Only delivery acknowledgements are decoded a second time here,
    /// and only while messages are in flight; the node already handled the datagram.)
    fn note_datagram(&mut self, data: &[u8]) {
        if self.in_flight.is_empty() || data.get(3) != Some(&(MessageType::DeliveryAck as u8)) {
            return;
        }
        if let Ok((_, Message::DeliveryAck { msg_id })) = crate::wire::decode(data) {
            self.finish(msg_id);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.status.set_phase(Phase::Stopped);
        self.status.set_join(JoinState::Gone);
    }
}

/// The loop's state (owned by its thread).
pub(super) struct EventLoop {
    poll: Poll,
    events: Events,
    shared: Arc<Shared>,
    start: std::time::Instant,
    slots: Vec<Option<Box<Slot>>>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    ready: Vec<usize>,
    noted: Vec<(usize, bool, bool)>,
    commands: VecDeque<Command>,
    incoming: Vec<Command>,
    recv_buf: Box<[u8]>,
    send_buf: Vec<u8>,
    stop: bool,
}

/// Marks the runtime stopped when the loop ends, even by a panic, so no caller waits forever.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl EventLoop {
    pub(super) fn new(poll: Poll, shared: Arc<Shared>, start: std::time::Instant) -> EventLoop {
        EventLoop {
            poll,
            events: Events::with_capacity(1024),
            shared,
            start,
            slots: Vec::new(),
            timers: BinaryHeap::new(),
            ready: Vec::new(),
            noted: Vec::new(),
            commands: VecDeque::new(),
            incoming: Vec::new(),
            recv_buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            send_buf: Vec::new(),
            stop: false,
        }
    }

    /// The runtime's clock: µs since the runtime started.
    fn now(&self) -> Instant {
        Instant(self.start.elapsed().as_micros() as u64)
    }

    /// Runs until a `Shutdown` command.
    pub(super) fn run(mut self) {
        let _ = self.shared.loop_thread.set(std::thread::current().id());
        let _guard = ExitGuard(self.shared.clone());
        while !self.stop {
            let mut timeout = self.poll_timeout();
            if timeout != Some(StdDuration::ZERO) && !self.shared.park() {
                timeout = Some(StdDuration::ZERO);
            }
            let polled = self.poll.poll(&mut self.events, timeout);
            self.shared.unpark();
            if let Err(e) = polled {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // epoll itself failed: nothing can be served any more.
                break;
            }
            self.note_events();
            self.read_ready();
            self.fire_timers();
            self.run_commands();
        }
        self.shutdown();
    }

    /// Zero while work is left over; else until the earliest deadline; else forever.
    fn poll_timeout(&mut self) -> Option<StdDuration> {
        if !self.ready.is_empty() || !self.commands.is_empty() {
            return Some(StdDuration::ZERO);
        }
        self.drop_stale_timers();
        let Reverse((at, _)) = *self.timers.peek()?;
        let now = self.now();
        Some(StdDuration::from_micros(
            at.as_micros().saturating_sub(now.as_micros()),
        ))
    }

    /// Pops heap entries that no longer match their slot's deadline.
    fn drop_stale_timers(&mut self) {
        while let Some(&Reverse((at, t))) = self.timers.peek() {
            let live = self.slot(t).is_some_and(|s| s.timer_at == Some(at));
            if live {
                return;
            }
            self.timers.pop();
        }
    }

    fn slot(&self, t: usize) -> Option<&Slot> {
        self.slots.get(t).and_then(|s| s.as_deref())
    }

    fn note_events(&mut self) {
        let mut noted = core::mem::take(&mut self.noted);
        noted.clear();
        for ev in self.events.iter() {
            if ev.token() != WAKER {
                noted.push((ev.token().0, ev.is_readable(), ev.is_writable()));
            }
        }
        for &(t, readable, writable) in &noted {
            if writable {
                self.on_writable(t);
            }
            if readable {
                self.mark_ready(t);
            }
        }
        self.noted = noted;
    }

    fn mark_ready(&mut self, t: usize) {
        if let Some(Some(s)) = self.slots.get_mut(t) {
            if !s.ready {
                s.ready = true;
                self.ready.push(t);
            }
        }
    }

    /// Reads every ready socket, up to [`READ_BATCH`] datagrams each.
    fn read_ready(&mut self) {
        let list = core::mem::take(&mut self.ready);
        for t in list {
            let Some(mut slot) = self.slots.get_mut(t).and_then(Option::take) else {
                continue;
            };
            slot.ready = false;
            if self.read_slot(&mut slot) {
                slot.ready = true;
                self.ready.push(t);
            }
            self.slots[t] = Some(slot);
        }
    }

    /// Reads up to [`READ_BATCH`] datagrams; `true` if the socket may hold more.
    fn read_slot(&mut self, slot: &mut Slot) -> bool {
        for _ in 0..READ_BATCH {
            match slot.socket.recv_from(&mut self.recv_buf) {
                Ok((n, from)) => {
                    let now = self.now();
                    slot.node.handle_datagram(now, from, &self.recv_buf[..n]);
                    slot.note_datagram(&self.recv_buf[..n]);
                    self.pump(slot);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error reported on the socket, or similar: count it and go on.
                Err(e) => {
                    log::debug!("node {}: receive error: {e}", slot.node.id());
                    NodeStatus::count(&slot.status.recv_errors);
                }
            }
        }
        true
    }

    /// Fires the timers of up to [`TIMER_BATCH`] nodes whose deadline has passed.
    fn fire_timers(&mut self) {
        let now = self.now();
        for _ in 0..TIMER_BATCH {
            self.drop_stale_timers();
            match self.timers.peek() {
                Some(&Reverse((at, _))) if at <= now => {}
                _ => return,
            }
            let Some(Reverse((_, t))) = self.timers.pop() else {
                return;
            };
            let Some(mut slot) = self.slots.get_mut(t).and_then(Option::take) else {
                continue;
            };
            slot.timer_at = None;
            slot.node.handle_timeout(now);
            self.pump(&mut slot);
            self.slots[t] = Some(slot);
        }
    }

    /// Drains a node's outputs after an input: datagrams, events (upcalls), next deadline.
    fn pump(&mut self, slot: &mut Slot) {
        // Published before the events: a thread woken by `Joined` must find the node active.
        slot.status.set_phase(slot.node.phase());
        self.flush(slot);
        while let Some(ev) = slot.node.poll_event() {
            upcall(slot, ev);
        }
        if let Some(at) = slot.node.poll_timeout() {
            if !matches!(slot.timer_at, Some(s) if s <= at) {
                slot.timer_at = Some(at);
                self.timers.push(Reverse((at, slot.status.token)));
            }
        }
    }

    /// Sends what the node queued; parks datagrams while the socket would block.
    fn flush(&mut self, slot: &mut Slot) {
        while let Some(dst) = slot.node.poll_transmit(&mut self.send_buf) {
            if slot.parked.is_empty() {
                match send(&slot.socket, &self.send_buf, dst) {
                    Sent::Done => continue,
                    Sent::Failed => {
                        log::debug!("node {}: cannot send to {dst}", slot.node.id());
                        NodeStatus::count(&slot.status.send_errors);
                        continue;
                    }
                    Sent::WouldBlock => self.want_writable(slot, true),
                }
            }
            if slot.parked.len() >= PARK_CAP {
                log::debug!(
                    "node {}: socket full, datagram to {dst} dropped",
                    slot.node.id()
                );
                NodeStatus::count(&slot.status.send_drops);
                continue;
            }
            slot.parked
                .push_back((dst, core::mem::take(&mut self.send_buf)));
        }
    }

    fn want_writable(&self, slot: &mut Slot, on: bool) {
        let interest = if on {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        // Reregistering a registered socket fails only if epoll is broken; then the loop ends
        // at its next poll.
        let _ =
            self.poll
                .registry()
                .reregister(&mut slot.socket, Token(slot.status.token), interest);
    }

    /// The socket drained: send parked datagrams until it would block again.
    fn on_writable(&mut self, t: usize) {
        let Some(mut slot) = self.slots.get_mut(t).and_then(Option::take) else {
            return;
        };
        while let Some((dst, buf)) = slot.parked.front() {
            match send(&slot.socket, buf, *dst) {
                Sent::WouldBlock => break,
                Sent::Failed => NodeStatus::count(&slot.status.send_errors),
                Sent::Done => {}
            }
            slot.parked.pop_front();
        }
        if slot.parked.is_empty() {
            self.want_writable(&mut slot, false);
            if let Some(done) = slot.leaving.take() {
                self.remove(slot, done);
                return;
            }
        }
        self.slots[t] = Some(slot);
    }

    /// Runs queued commands, up to [`COMMAND_BATCH`] per round.
    fn run_commands(&mut self) {
        self.shared.take(&mut self.incoming);
        self.commands.extend(self.incoming.drain(..));
        for _ in 0..COMMAND_BATCH {
            let Some(cmd) = self.commands.pop_front() else {
                return;
            };
            self.command(cmd);
            if self.stop {
                return;
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Add(n) => self.add(*n),
            Command::Start(t, boots) => self.start(t, &boots),
            Command::Route {
                token,
                msg_id,
                key,
                payload,
                hint,
            } => self.route(token, msg_id, key, payload, hint),
            Command::Call(t, f) => {
                if let Some(s) = self.slot(t) {
                    f(&s.node);
                }
            }
            Command::Leave(t, done) => self.leave(t, done),
            Command::Crash(t, done) => {
                if let Some(mut slot) = self.slots.get_mut(t).and_then(Option::take) {
                    log::info!("node {}: crashed on purpose", slot.node.id());
                    self.deregister(&mut slot);
                    drop(slot);
                    if let Some(d) = done {
                        let _ = d.send(());
                    }
                }
            }
            Command::Shutdown => self.stop = true,
        }
    }

    fn start(&mut self, t: usize, boots: &[SocketAddr]) {
        let Some(mut slot) = self.slots.get_mut(t).and_then(Option::take) else {
            return;
        };
        let now = self.now();
        if boots.is_empty() {
            log::info!("node {}: starting a new overlay", slot.node.id());
            slot.node.start_alone(now);
        } else if let Err(e) = slot.node.join(now, boots) {
            log::debug!("node {}: join not started: {e}", slot.node.id());
            // Started meanwhile (the handle checked, but another handle may have raced it).
            let s = match slot.node.phase() {
                Phase::Active => JoinState::Active,
                Phase::Joining => JoinState::Joining,
                _ => JoinState::Failed,
            };
            slot.status.set_join(s);
        }
        self.pump(&mut slot);
        self.slots[t] = Some(slot);
    }

    fn route(
        &mut self,
        t: usize,
        msg_id: u64,
        key: Option<Id>,
        payload: Bytes,
        hint: Option<NodeHandle>,
    ) {
        let Some(mut slot) = self.slots.get_mut(t).and_then(Option::take) else {
            return;
        };
        let now = self.now();
        match slot.node.route_with_id(now, msg_id, key, payload, hint) {
            Ok(_) => {
                slot.in_flight.insert(msg_id);
            }
            Err(e) => {
                log::debug!("node {}: route refused: {e}", slot.node.id());
                NodeStatus::count(&slot.status.routes_refused);
                slot.status.release_in_flight();
            }
        }
        self.pump(&mut slot);
        self.slots[t] = Some(slot);
    }

    fn add(&mut self, n: NewNode) {
        let app: SharedApp = Arc::new(Mutex::new(n.app));
        let mut node = n.node;
        log::debug!("node {} added on {}", node.id(), node.handle().addr);
        node.set_forwarder(Some(Box::new(ForwardUpcall {
            app: app.clone(),
            status: n.status.clone(),
        })));
        let t = n.token;
        if self.slots.len() <= t {
            self.slots.resize_with(t + 1, || None);
        }
        self.slots[t] = Some(Box::new(Slot {
            node,
            socket: n.socket,
            app,
            status: n.status,
            parked: VecDeque::new(),
            timer_at: None,
            ready: false,
            leaving: None,
            in_flight: FxHashSet::default(),
        }));
        // The socket was registered before the loop knew it: read what may have arrived.
        self.mark_ready(t);
    }

    fn leave(&mut self, t: usize, done: Option<Sender<()>>) {
        let Some(mut slot) = self.slots.get_mut(t).and_then(Option::take) else {
            return;
        };
        let now = self.now();
        log::info!("node {}: leaving", slot.node.id());
        slot.node.leave(now);
        self.pump(&mut slot);
        if slot.parked.is_empty() {
            self.remove(slot, done);
        } else {
            slot.leaving = Some(done);
            self.slots[t] = Some(slot);
        }
    }

    fn remove(&mut self, mut slot: Box<Slot>, done: Option<Sender<()>>) {
        self.deregister(&mut slot);
        drop(slot);
        if let Some(d) = done {
            let _ = d.send(());
        }
    }

    fn deregister(&self, slot: &mut Slot) {
        let _ = self.poll.registry().deregister(&mut slot.socket);
    }

    /// Every node leaves (best effort: what cannot be sent now is dropped).
    fn shutdown(&mut self) {
        let now = self.now();
        for t in 0..self.slots.len() {
            let Some(mut slot) = self.slots[t].take() else {
                continue;
            };
            slot.node.leave(now);
            self.flush(&mut slot);
            self.deregister(&mut slot);
        }
    }
}

enum Sent {
    Done,
    WouldBlock,
    Failed,
}

fn send(socket: &UdpSocket, buf: &[u8], dst: SocketAddr) -> Sent {
    loop {
        match socket.send_to(buf, dst) {
            Ok(_) => return Sent::Done,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Sent::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Sent::Failed,
        }
    }
}

/// Hands one node event to the application, catching panics.
fn upcall(slot: &mut Slot, ev: Event) {
    match ev {
        Event::Joined => slot.status.set_join(JoinState::Active),
        Event::JoinFailed => slot.status.set_join(JoinState::Failed),
        Event::Delivered { msg_id, source, .. } if source.id == slot.node.id() => {
            slot.finish(msg_id);
        }
        Event::Undeliverable { msg_id, .. } => slot.finish(msg_id),
        _ => {}
    }
    log_event(slot.node.id(), &ev);
    let node = &slot.node;
    let mut app = slot.app.lock();
    let r = catch_unwind(AssertUnwindSafe(|| match ev {
        Event::Delivered {
            key,
            msg_id,
            source,
            hops,
            payload,
        } => app.deliver(
            node,
            Delivery {
                key,
                msg_id,
                source,
                hops,
                payload,
            },
        ),
        Event::NeighborJoined(h) => app.update(node, h, true),
        Event::NeighborLeft(h) => app.update(node, h, false),
        Event::Undeliverable {
            msg_id,
            key,
            reason,
        } => app.undeliverable(node, msg_id, key, reason),
        Event::Joined => app.joined(node),
        Event::JoinFailed => {}
    }));
    if r.is_err() {
        log::error!("node {}: an upcall panicked (caught)", node.id());
        NodeStatus::count(&slot.status.upcall_panics);
    }
}

/// Logs a node event (before the upcall, outside every lock: a logger may call back into the
/// runtime). Joins and departures from the leaf set are `info`, failures `warn`.
fn log_event(me: Id, ev: &Event) {
    match ev {
        Event::Joined => log::info!("node {me}: joined (active)"),
        Event::JoinFailed => log::warn!("node {me}: join failed: no bootstrap answered"),
        Event::NeighborJoined(h) => log::info!("node {me}: leaf set + {h}"),
        Event::NeighborLeft(h) => log::info!("node {me}: leaf set - {h} (left or failed)"),
        Event::Undeliverable {
            msg_id,
            key,
            reason,
        } => log::warn!(
            "node {me}: message {msg_id:#x} to {key} undeliverable: {}",
            reason_text(*reason)
        ),
        Event::Delivered { .. } => {}
    }
}

fn reason_text(reason: u8) -> &'static str {
    use crate::wire::undeliverable_reason as r;
    match reason {
        r::HOP_LIMIT => "hop limit exceeded",
        r::OVERLOAD => "a node on the way was out of buffer space",
        r::UNREACHABLE => "the direct-send target could not be reached",
        r::LOST => "lost (no acknowledgement after every retry)",
        r::DROPPED => "a forward upcall on the way dropped it",
        _ => "unknown reason",
    }
}
