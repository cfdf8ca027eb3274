package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxInbox       = 100_000             // messages stored per recipient
	DefaultMaxAge         = 30 * 24 * time.Hour // how long an undelivered message is kept
	DefaultDuplicates     = 24 * time.Hour      // window in which a repeated (ID, To) is recognised
	DefaultServerName     = "lanchat-relay"
	defaultReadyTimeout   = 30 * time.Second
	defaultOpTimeout      = 10 * time.Second // for calls that take no context (Ack, Pending)
	inboxPollInterval     = 30 * time.Second // safety net behind the notify subject, see Inbox.Next
	inviteSecretBytes     = 20               // 160 bits
	maxEnvelopeIDLen      = 256
	maxNameLen            = 128
	maxPeerIDLen          = 128
	maxKindLen            = 32
	streamInbox           = "INBOX"
	subjInboxPrefix       = "lc.inbox."
	subjNotifyPrefix      = "lc.notify."
	bucketMembers         = "lc_members"
	bucketInvites         = "lc_invites"
	bucketGroups          = "lc_groups"
	hdrID                 = "Lc-Id"
	hdrFrom               = "Lc-From"
	hdrGroup              = "Lc-Group"
	hdrKind               = "Lc-Kind"
	hdrSent               = "Lc-Sent"
	jsErrStoreFailed      = 10077 // JSStreamStoreFailedF: the stream refused to store a message
	jsMsgPerSubjectErrMsg = "maximum messages per subject exceeded"
	jsMaxBytesErrMsg      = "maximum bytes exceeded"
)

// Errors callers branch on. Each is returned wrapped with the operation name.
var (
	ErrInboxFull     = errors.New("inbox full")
	ErrStoreFull     = errors.New("store full")
	ErrInviteInvalid = errors.New("invite invalid, used or expired")
	ErrNotMember     = errors.New("not a member")
	ErrAlreadyMember = errors.New("already a member")
	ErrNoGroup       = errors.New("no such group")
	ErrNotAllowed    = errors.New("not allowed")
	ErrBadID         = errors.New("invalid identifier")
	ErrBadEnvelope   = errors.New("invalid envelope")
	ErrInboxReplaced = errors.New("inbox session replaced by a newer one")
	ErrInboxClosed   = errors.New("inbox session closed")
	ErrNotDelivered  = errors.New("sequence not delivered in this session")
	ErrClosed        = errors.New("store closed")
)

// Config configures a Store. Zero fields mean the documented defaults.
type Config struct {
	// Dir is the data folder; JetStream keeps its files in Dir/jetstream. Required.
	Dir string
	// SyncAlways makes JetStream fsync every write before acknowledging it. By default
	// an acknowledged write has been written to the operating system (it survives kill -9
	// of the relay) and is fsynced every SyncInterval (it may be lost in a power cut).
	SyncAlways bool
	// SyncInterval is the period of the background fsync when SyncAlways is off;
	// 0 means NATS's default (2 minutes).
	SyncInterval time.Duration
	// Replicas is the number of copies of the stream and buckets; 0 means 1.
	// More than 1 needs Cluster.
	Replicas int
	// MaxInbox caps the messages stored per recipient; 0 means DefaultMaxInbox.
	MaxInbox int64
	// MaxAge is how long undelivered messages are kept; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// Duplicates is the window in which a repeat of the same (ID, To) is not stored
	// again; 0 means DefaultDuplicates. It is capped at MaxAge.
	Duplicates time.Duration
	// MaxBytes caps the whole INBOX stream in bytes (ErrStoreFull past it); 0 means no
	// cap other than JetStream's own limit for the disk.
	MaxBytes int64
	// ServerName names this NATS server; it must differ between cluster members.
	// "" means DefaultServerName.
	ServerName string
	// Listen, if set (host:port), opens a NATS client listener, for instance for the
	// nats CLI on 127.0.0.1. "" (the default) means in-process only, no TCP listener.
	Listen string
	// Cluster joins several relays into one NATS cluster with replicated streams.
	// The zero value is a single node.
	Cluster ClusterConfig
	// OnRemove, if set, is called with the peer ID of every member removed, on this
	// relay or (in a cluster) another one, so the caller can drop its connections. It
	// runs on the store's watcher goroutine: it must not block, nor call the Store's
	// methods that write (they wait for that goroutine).
	OnRemove func(peerID string)
	// Logger receives the store's and NATS's logs; nil discards them.
	Logger *slog.Logger
}

// ClusterConfig joins relays into a NATS cluster. Only the single-node setup is tested.
type ClusterConfig struct {
	Name   string   // cluster name, the same on every relay; "" means no cluster
	Listen string   // host:port for routes from the other relays
	Routes []string // nats-route://host:port of the other relays
}

// Store is the relay's durable store: inboxes, members, invites and groups.
type Store struct {
	cfg     Config
	log     *slog.Logger
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	inbox   jetstream.Stream
	members jetstream.KeyValue
	invites jetstream.KeyValue
	groups  jetstream.KeyValue
	mcache  *cache[Member]
	gcache  *cache[Group]
	notify  *nats.Subscription
	now     func() time.Time // replaced in tests

	mu       sync.Mutex
	sessions map[string]*Inbox // the active inbox session per peer
	closed   bool
	swept    time.Time // when expired invites were last swept

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open starts the embedded NATS server on cfg.Dir, creates or updates the stream and
// buckets, and loads the member and group caches.
func Open(ctx context.Context, cfg Config) (s *Store, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("store: open: %w", err)
		}
	}()
	if cfg.Dir == "" {
		return nil, errors.New("no data folder")
	}
	cfg = withDefaults(cfg)
	s = &Store{
		cfg:      cfg,
		log:      cfg.Logger,
		now:      time.Now,
		sessions: make(map[string]*Inbox),
		done:     make(chan struct{}),
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.startServer(); err != nil {
		return nil, err
	}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	s.log.Info("store open", "dir", cfg.Dir, "sync_always", cfg.SyncAlways,
		"replicas", cfg.Replicas, "max_inbox", cfg.MaxInbox, "max_age", cfg.MaxAge,
		"members", s.mcache.len(), "groups", s.gcache.len())
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxInbox <= 0 {
		cfg.MaxInbox = DefaultMaxInbox
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = DefaultDuplicates
	}
	cfg.Duplicates = min(cfg.Duplicates, cfg.MaxAge)
	if cfg.ServerName == "" {
		cfg.ServerName = DefaultServerName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

func (s *Store) serverOptions() (*server.Options, error) {
	cfg := s.cfg
	opts := &server.Options{
		ServerName:   cfg.ServerName,
		JetStream:    true,
		StoreDir:     filepath.Join(cfg.Dir, "jetstream"),
		SyncAlways:   cfg.SyncAlways,
		SyncInterval: cfg.SyncInterval,
		NoSigs:       true,
		NoLog:        true,
		DontListen:   cfg.Listen == "",
	}
	if cfg.Listen != "" {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		opts.Host, opts.Port = host, port
	}
	if c := cfg.Cluster; c.Name != "" {
		host, port, err := splitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("cluster listen: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port}
		opts.Routes = server.RoutesFromStr(strings.Join(c.Routes, ","))
	} else if cfg.Replicas > 1 {
		return nil, fmt.Errorf("%d replicas need a cluster", cfg.Replicas)
	}
	return opts, nil
}

func splitHostPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, port, nil
}

func (s *Store) startServer() error {
	opts, err := s.serverOptions()
	if err != nil {
		return err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{s.log.With("component", "nats")}, false, false, false)
	s.ns = ns
	ns.Start()
	if !ns.ReadyForConnections(defaultReadyTimeout) {
		return errors.New("nats server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("lanchat-relay-store"),
		nats.NoCallbacksAfterClientClose(), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	s.nc = nc
	s.js, err = jetstream.New(nc)
	return err
}

func (s *Store) setup(ctx context.Context) error {
	var err error
	// In a cluster the meta leader may take a moment to be elected.
	for {
		s.inbox, err = s.js.CreateOrUpdateStream(ctx, s.streamConfig())
		if err == nil || !errors.Is(err, jetstream.ErrJetStreamNotEnabled) && !isNoLeader(err) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", streamInbox, err)
	}
	if s.members, err = s.bucket(ctx, bucketMembers); err != nil {
		return err
	}
	if s.invites, err = s.bucket(ctx, bucketInvites); err != nil {
		return err
	}
	if s.groups, err = s.bucket(ctx, bucketGroups); err != nil {
		return err
	}
	s.notify, err = s.nc.Subscribe(subjNotifyPrefix+"*", s.onNotify)
	if err != nil {
		return fmt.Errorf("notify subscription: %w", err)
	}
	if s.mcache, err = watch(ctx, s, s.members, decodeMember, s.memberRemoved); err != nil {
		return err
	}
	s.gcache, err = watch(ctx, s, s.groups, decodeGroup, nil)
	return err
}

func isNoLeader(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 503 || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders)
}

func (s *Store) streamConfig() jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:                 streamInbox,
		Description:          "lanchat relay: undelivered messages, one subject per recipient",
		Subjects:             []string{subjInboxPrefix + "*"},
		Retention:            jetstream.LimitsPolicy,
		MaxMsgsPerSubject:    s.cfg.MaxInbox,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgs:              -1,
		MaxBytes:             -1,
		MaxAge:               s.cfg.MaxAge,
		Duplicates:           s.cfg.Duplicates,
		Storage:              jetstream.FileStorage,
		Replicas:             s.cfg.Replicas,
		PersistMode:          jetstream.DefaultPersistMode,
	}
	if s.cfg.MaxBytes > 0 {
		cfg.MaxBytes = s.cfg.MaxBytes
	}
	return cfg
}

func (s *Store) bucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   name,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: s.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return kv, nil
}

// Close closes every inbox session, stops the watchers, and shuts the NATS server down.
// It waits for the store's goroutines and is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		sessions := s.sessions
		s.sessions = map[string]*Inbox{}
		s.mu.Unlock()
		for _, in := range sessions {
			in.end(ErrClosed)
		}
		close(s.done)
		if s.mcache != nil {
			s.mcache.stop()
		}
		if s.gcache != nil {
			s.gcache.stop()
		}
		if s.notify != nil {
			s.notify.Unsubscribe()
		}
		s.wg.Wait()
		if s.nc != nil {
			s.nc.Close()
		}
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
		s.log.Info("store closed", "dir", s.cfg.Dir)
	})
	return s.closeErr
}

// opContext bounds the calls whose signature has no context. After Close the
// connection is closed, so such calls fail at once rather than at the deadline.
func (s *Store) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), defaultOpTimeout)
}

// natsLogger sends the NATS server's log lines to slog. Notices (the start-up banner
// and the like) go to Debug so an operator's log shows the relay's own lines.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) logf(level slog.Level, format string, v []any) {
	if n.l.Enabled(context.Background(), level) {
		n.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (n natsLogger) Noticef(format string, v ...any) { n.logf(slog.LevelDebug, format, v) }
func (n natsLogger) Warnf(format string, v ...any)   { n.logf(slog.LevelWarn, format, v) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.logf(slog.LevelError, format, v) }
func (n natsLogger) Errorf(format string, v ...any)  { n.logf(slog.LevelError, format, v) }
func (n natsLogger) Debugf(format string, v ...any)  { n.logf(slog.LevelDebug, format, v) }
func (n natsLogger) Tracef(format string, v ...any)  {}

// Epoch names this store's message stream: sequences are comparable only
// within one epoch (a stream deleted and made anew starts again at 1).
func (s *Store) Epoch() string {
	return strconv.FormatInt(s.inbox.CachedInfo().Created.UnixNano(), 36)
}
