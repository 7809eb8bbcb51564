//! Peer-to-peer messaging: the wire protocol between peer nodes and the delivery rules on
//! top of it.
//!
//! * [`wire`]: length-prefixed frames, the handshake, the protocol version.
//! * [`delivery`]: message ids, per-recipient chains, acknowledgements, expiry, and the
//!   receiver's marks: at least once on the wire, exactly once to the user, in order.
//! * [`link`]: one link as a connection machine (framing, keepalive, deadlines).

pub mod delivery;
pub mod link;
pub mod wire;
