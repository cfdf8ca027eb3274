// Package store is the relay server's durable store: offline messages, members,
// invites and groups, kept in an embedded NATS JetStream server.
//
// # Server
//
// [Open] starts a NATS server inside the relay process with JetStream on
// Config.Dir/jetstream and connects to it in-process (nats.InProcessServer): no TCP
// listener unless Config.Listen asks for one. The server's log lines go to
// Config.Logger (notices at Debug, warnings and errors as such); it installs no
// signal handlers. Config.Cluster and Config.Replicas are passed through to the server
// and to every stream and bucket, so several relays can later form a NATS cluster
// with replicated streams with no change to the formats below; only the single node
// is tested.
//
// # Durability
//
// Every write (Enqueue, Ack, and each bucket update) returns once JetStream has
// acknowledged it, and JetStream acknowledges after the write reached the operating
// system (stream persist mode "default": flushed before the ack). So an acknowledged
// write survives kill -9 of the relay. With the default sync policy the files are
// fsynced every Config.SyncInterval (NATS's default is 2 minutes), so a power cut or
// kernel crash can lose what was acknowledged in that last interval. Config.SyncAlways
// fsyncs each write before acknowledging it, which survives a power cut too but costs
// one fsync per message: JetStream does not share an fsync between concurrent writes.
//
// Measured on the 2-core development VM (BenchmarkEnqueue, 32 concurrent senders,
// 256-byte bodies): the default policy stores about 26,000-32,000 msg/s, which meets
// the relay's 5,000 msg/s target; SyncAlways about 700-800 msg/s, the same as the
// baseline of one fsync per record on a plain file (540-960/s), so it does not meet
// the target on this disk. A plain file with group commit reaches about 10,000/s,
// which is what a shared fsync could give.
//
// # Stream INBOX
//
// Undelivered messages, one subject per recipient:
//
//	subject   lc.inbox.<peerID>      (stream subjects "lc.inbox.*")
//	storage   file, Replicas copies, retention limits
//	limits    MaxMsgsPerSubject = MaxInbox with discard-new per subject (a full
//	          inbox refuses: ErrInboxFull); MaxAge (default 30 days); MaxBytes
//	          (ErrStoreFull) if set
//	dedup     Nats-Msg-Id = "<To>|<ID>", window Config.Duplicates (default 24h)
//	headers   Lc-Id     envelope ID (printable ASCII, no spaces, at most 256 bytes)
//	          Lc-From   sender peer ID
//	          Lc-Group  group ID (absent for direct messages)
//	          Lc-Kind   "msg" or "receipt" (any lowercase token is stored)
//	          Lc-Sent   sender's time, RFC 3339 with nanoseconds (absent if zero)
//	data      the envelope body, opaque
//
// Peer IDs, group IDs and kinds used in subjects, keys and headers must be 1 to 128
// characters of [A-Za-z0-9_-] (ErrBadID otherwise), so no ID can contain '.', '*',
// '>' or spaces and address another inbox. Messages are accepted only for current
// members (ErrNotMember), so nobody can make inboxes for strangers.
//
// Dedup: a repeat of (ID, To) within the window returns the first sequence with
// dup=true, also after the message was delivered and acknowledged. After a restart
// JetStream rebuilds its dedup table from the messages still in the stream, so a
// repeat of a message that was acknowledged before the restart is stored again;
// receivers drop repeats by ID.
//
// # Delivery and acknowledgement
//
// There are no JetStream consumers for inboxes. A session ([Store.Inbox]) reads the
// peer's subject with "get next message by subject" requests, starting at sequence 1,
// that is at the first message still stored, which is the first not acknowledged.
// [Inbox.Ack] of sequence n purges the peer's subject below n+1 (a stream purge with
// subject and sequence), a replicated and durable stream operation; so acknowledged
// messages leave the stream at once and nothing grows with the number of peers except
// their messages. When a session finds nothing it waits for a wake-up on core NATS
// subject lc.notify.<peerID>, published by Enqueue after the store acknowledged the
// message (the relays of a cluster hear each other's), with a poll every 30 seconds
// as a safety net for a lost wake-up. The store keeps one session per peer: opening
// another ends the earlier one (ErrInboxReplaced). Each Next is one request (about
// 0.1 ms here) and each Ack one purge, so acknowledge in batches: one session drains
// about 9,000 msg/s acking every 64th message, 6,000 msg/s acking each
// (BenchmarkDeliverAck).
//
// # Buckets
//
// Three key-value buckets, history 1, file storage, Replicas copies:
//
//	lc_members  key <peerID>        value JSON Member {"id","name","joined","invite"}
//	lc_invites  key hex(sha256(secret bytes))
//	                                value JSON {"note","created","expires","used_by","used_at"}
//	lc_groups   key <groupID>       value JSON Group {"id","name","owner","members","created"}
//
// An invite secret is 20 random bytes written as 32 lowercase base32 characters; only
// its hash is stored, and Member.Invite and Invite.ID are the hash's first 16 hex
// digits. Redeeming marks the invite used with a compare-and-set on its revision, so
// exactly one of several concurrent redeemers wins; expired invites are deleted when
// the next one is created. Group edits are compare-and-set on the group's revision,
// retried on conflict. Members and groups are cached in memory and kept current by
// watching their buckets (in a cluster, edits on other relays arrive the same way);
// writers wait until the cache holds their own write.
package store
