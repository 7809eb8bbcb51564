//! Peer-to-peer messaging: the wire protocol between peer nodes and the delivery rules on
//! top of it.
//!
//! * [`wire`]: length-prefixed frames, the handshake, the protocol version.
//! * [`delivery`]: message ids, per-recipient chains, acknowledgements, expiry, and the
//!   receiver's marks: at least once on the wire, exactly once to the user, in order.
//! * [`link`]: one link as a connection machine (framing, keepalive, deadlines).
//! * [`history`]: a peer node's durable state and the records of its log.
//! * [`node`]: the peer node: links, the tracker, durability.
//! * [`api`]: its user's local web UI and API.
//! * [`conn`]: the kinds of connection a peer node has, as one type.
//! * [`check`]: what any sequence of requests must do to a peer node's API (the fuzz
//!   target's and a property test's body).

pub mod api;
pub mod check;
pub mod conn;
pub mod delivery;
pub mod history;
pub mod link;
pub mod node;
pub mod wire;
