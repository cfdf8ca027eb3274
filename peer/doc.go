// Package peer is the lanchat node engine: it owns the UDP and TCP sockets on
// the IPMsg port, runs discovery, sends messages with acknowledgement and
// retries, drops repeats, answers information requests, keeps the history of
// every conversation in the data folder and reports what happens as Events.
//
// Delivery (IPMsg protocol §5): a message is SENDMSG|SENDCHECKOPT; the
// receiver answers RECVMSG carrying our PacketNo. We resend the very same
// datagram until it is acknowledged, backing off from a timeout derived from
// the peer's measured round trip up to one second, and report failure when
// no ack came within the delivery deadline (about 5 s, as IP Messenger and
// iptux do). Messages to one peer go one at a time, so they arrive in the
// order they were sent. Receivers re-ack repeats and show them once.
//
// The engine's API speaks its own types (Contact, Message, Event); ipmsg
// types stay inside.
package peer
