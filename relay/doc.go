// Package relay is lanchat's relay: the server that members of an
// organisation join with an invite, and the client a node uses to reach it.
// Over one libp2p connection (TCP or QUIC, Noise-encrypted) a member gets a
// member directory with presence, messages stored for members who are
// offline and delivered in order and once when they connect, persistent
// groups, and (for reaching members on other networks) a circuit relay v2
// that only members may use.
//
// # Identity
//
// Every node and every relay has a persistent Ed25519 key (a libp2p peer
// ID), kept in its data folder (see LoadIdentity). lanchat nodes announce
// theirs on the LAN in the entry packet's UTF-8 block as "\nID:<peer ID>",
// which IPMsg-family clients ignore.
//
// # Protocols
//
// Both are libp2p stream protocols whose stream carries frames: an unsigned
// varint length (at most MaxFrame) followed by that many bytes of one JSON
// object, the Frame type, whose "t" field names it.
//
//	/lanchat/join/1.0.0     client: {"t":"join","secret":"…","profile":{…}}
//	                        relay:  {"t":"joined"} or {"t":"error","code":"…","error":"…"}
//	/lanchat/session/1.0.0  one long-lived stream per member:
//	  client → relay
//	    {"t":"hello","v":1,"profile":{"key":"user@host","nick":"…","group":"…"},"dirv":"…"}
//	    {"t":"send","id":"…","to":"<peer ID>","body":{…}}       or "group":"<id>" instead of "to"
//	    {"t":"ack","seq":N}                                       every delivery up to N is stored
//	    {"t":"group","ref":"…","op":"create|add|remove|list","group":"…","name":"…","peers":[…]}
//	    {"t":"ping"}                                              every few seconds; the relay answers pong
//	  relay → client
//	    {"t":"welcome","epoch":"…","dirv":"…","members":[…],"online":"<bits>","groups":[…],"stun":[3478,3479]}
//	    {"t":"presence","members":[…]}                           new members, new profiles
//	    {"t":"presence","on":["<peer ID>"],"off":[…]}            members who came or went
//	    {"t":"stored","id":"…"}                                  the send is durable on the relay
//	    {"t":"deliver","seq":N,"env":{…}}                         in stored order; ack when kept
//	    {"t":"group","ref":"…","groups":[…]}                     answer to a group request
//	    {"t":"pong"}
//	    {"t":"error","id":"…","ref":"…","code":"…","error":"…"} a send or request failed
//
// A message's body is for the members' nodes; the relay stores it as it
// is: {"text":"…","nick":"…"}, with "offer" and "files" for attached files,
// "sealed":true for a message the recipient must open, "auto":true for an
// away auto-reply (never answered by one). Notices back from
// the recipient are bodies of their own: "opened":"<id as sent>" once it
// opened a sealed message, "release":<offer> when it declined the files.
//
// The directory in a welcome is every member's profile, sorted by peer ID,
// and "dirv" names its version: the relay leaves "members" out when the
// hello's "dirv" (what the client kept from its last session) is current.
// "online" is a bit per directory member, base64 in JSON: bit i%8 of byte
// i/8 is set when the i-th member is online.
//
// The relay sets every envelope's sender from the authenticated connection;
// what a client claims is never trusted. A send's "id" is unique per sender
// and makes a resend after a reconnect harmless: the relay stores it once.
// Deliveries carry the relay store's sequence (monotonic per relay "epoch"),
// so a client that crashed between keeping a message and acknowledging it
// recognises the redelivery.
//
// Members also talk to each other, without the relay's store:
//
//	/lanchat/direct/1.0.0   one stream per message, member to member:
//	  sender:    {"t":"send","id":"…","body":{…}}
//	  recipient: {"t":"stored","id":"…"} once it kept the message, or an error frame
//	/lanchat/file/1.0.0     one stream per file request, no frames: IPMsg's file
//	                        transfer as on the LAN's TCP port (a GETFILEDATA or
//	                        GETDIRFILES request line, then the bytes); the offer
//	                        rides in a message body's "offer" and "files"
//
// The sender opens it over a direct connection if one exists, else over a
// circuit through the relay ("/p2p/<relay>/p2p-circuit"); each member keeps
// a circuit reservation for that. A member reached through a circuit tries
// hole punching (DCUtR) to the addresses the relay observed, and to the
// public mapping of its TCP port that the relay's STUN over TCP (on the
// first STUN port) reported, unless its NAT is symmetric, where the mapping
// the other side would have to reach changes per destination. With UDP
// blocked it punches over TCP only. The member the circuit came in to starts it,
// when the circuit comes in and, while it is still the only connection,
// again 5 s later, then twice as long after each failure up to 5 minutes,
// and at once when a file transfer starts on the circuit. A recipient
// serves only members of the directory, and drops a message it kept
// already: one whose "stored" was lost is sent again through the relay's
// store, with the same id.
//
// Anyone may open a connection, but a peer that is not a member reaches
// only the join protocol, and is disconnected after a short grace period
// unless it joins. Removing a member disconnects it at once.
package relay
