package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
)

// The NATS configurations in deploy/ parse with the nats-server version the
// project builds against (2.15: the Debian package on a dev machine may be
// older and not know sync_interval), the single node fsyncs every write, and
// every service has its own user.
func TestDeployNATSConfigs(t *testing.T) {
	for _, v := range []string{"INTAKE", "REVIEW", "REPORT", "TRACKER", "NOTIFY", "UPSTREAM", "TRACKERS", "OPERATOR"} {
		t.Setenv(v+"_NATS_PASSWORD", "secret-"+v)
	}
	t.Setenv("NATS_SERVER_NAME", "nats-0")
	for _, tc := range []struct {
		file       string
		syncAlways bool
		cluster    bool
	}{
		{"nats-server.conf", true, false},
		{"cluster.conf", false, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !opts.JetStream || opts.SyncAlways != tc.syncAlways || (opts.Cluster.Name != "") != tc.cluster {
				t.Errorf("jetstream=%v sync_always=%v cluster=%q", opts.JetStream, opts.SyncAlways, opts.Cluster.Name)
			}
			if opts.MaxPayload != 1<<20 {
				t.Errorf("max_payload = %d, want 1 MiB", opts.MaxPayload)
			}
			users := map[string]bool{}
			for _, u := range opts.Users {
				users[u.Username] = u.Permissions != nil && u.Password != ""
			}
			for _, want := range []string{"intake", "review", "report", "tracker", "notify", "upstream", "trackers"} {
				if !users[want] {
					t.Errorf("no user %q with a password and permissions", want)
				}
			}
		})
	}
}

// The per-service NATS users of deploy/nats/permissions.conf let each service
// do its whole job and nothing is refused: the demo scenario runs end to end
// with every service, and the publisher, connected as its own user. A denied
// subject would show up as a timeout (NATS reports it only asynchronously).
func TestPipelineRunsUnderTheDeployedNATSPermissions(t *testing.T) {
	users := []string{"intake", "review", "report", "tracker", "notify", "upstream", "trackers", "operator"}
	serviceEnv := map[string]map[string]string{}
	for _, u := range users {
		pw := "pw-" + u + "-0123456789"
		t.Setenv(strings.ToUpper(u)+"_NATS_PASSWORD", pw)
		serviceEnv[u] = map[string]string{"NATS_USER": u, "NATS_PASSWORD": pw}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	core, logged := observer.New(zap.WarnLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()))
	s, err := StartStack(ctx, StackConfig{
		DatabaseURL:    pgtest.NewDatabase(t),
		StoreDir:       t.TempDir(),
		NATSConfigFile: filepath.Join("..", "..", "deploy", "nats", "nats-server.conf"),
		ServiceEnv:     serviceEnv,
		Client:         bus.Options{User: "upstream", Password: serviceEnv["upstream"]["NATS_PASSWORD"]},
		Log:            log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	res, err := runScenario(ctx, s, demoIncidentForTest(t, "SEC-PERMS-1"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || len(res.Actions) != 6 {
		t.Errorf("scenario under permissions: verified=%v actions=%d", res.Verified, len(res.Actions))
	}
	for _, e := range logged.FilterMessage("nats async error").All() {
		t.Errorf("refused by NATS: %v", e.ContextMap())
	}
}

// deployedNATS starts a nats-server with deploy/nats/nats-server.conf (its
// users and permissions) and returns its URL and the password of each user.
func deployedNATS(t *testing.T) (string, map[string]string) {
	t.Helper()
	pw := map[string]string{}
	for _, u := range []string{"intake", "review", "report", "tracker", "notify", "upstream", "trackers", "operator"} {
		pw[u] = "pw-" + u + "-0123456789"
		t.Setenv(strings.ToUpper(u)+"_NATS_PASSWORD", pw[u])
	}
	ns, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(),
		ConfigFile: filepath.Join("..", "..", "deploy", "nats", "nats-server.conf")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL(), pw
}

// natsUser is a connection as one deployed user that collects the
// permission violations the server reports for it.
type natsUser struct {
	name       string
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan string
}

func dialAs(t *testing.T, url, user, password string) *natsUser {
	t.Helper()
	u := &natsUser{name: user, violations: make(chan string, 100)}
	nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.CustomInboxPrefix(bus.InboxPrefix(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				u.violations <- err.Error()
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	u.nc = nc
	if u.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return u
}

// refused fails t unless the server reports a permission violation on a
// subject starting with subject for u, after attempt ran.
func (u *natsUser) refused(t *testing.T, what, subject string, attempt func(ctx context.Context) error) {
	t.Helper()
	for len(u.violations) > 0 { // only what this attempt causes counts
		<-u.violations
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := attempt(ctx) // a refused request gets no answer: it times out
	deadline := time.After(10 * time.Second)
	for {
		select {
		case v := <-u.violations:
			if strings.Contains(v, `"`+subject) {
				return
			}
		case <-deadline:
			t.Errorf("%s as %s: not refused (err %v)", what, u.name, err)
			return
		}
	}
}

// Issue 9 item 3: under the deployed users nobody reads another user's
// replies or pull deliveries, touches another service's durable, changes a
// stream, or reads the private NOTIFY stream.
func TestDeployedNATSPermissionsRefuseTrespass(t *testing.T) {
	url, pw := deployedNATS(t)
	ctx := context.Background()
	as := func(user string) *natsUser { return dialAs(t, url, user, pw[user]) }
	operator, report := as("operator"), as("report")
	for _, sc := range []jetstream.StreamConfig{
		{Name: bus.StreamAfteraction, Subjects: []string{"afteraction.>"}},
		{Name: bus.StreamIncidents, Subjects: []string{"incidents.closed.>"}},
		{Name: "NOTIFY", Subjects: []string{"notify.>"}}, // the notify service's private stream
	} {
		if _, err := operator.js.CreateOrUpdateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := report.js.CreateOrUpdateConsumer(ctx, bus.StreamAfteraction, jetstream.ConsumerConfig{
		Durable: "report-actions", FilterSubjects: []string{"afteraction.action.>"}, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatalf("report creating its own durable: %v", err)
	}

	for _, u := range []string{"intake", "trackers", "upstream"} {
		for _, inbox := range []string{"_INBOX.>", "_INBOX_review.>", "_INBOX_report.x"} {
			n := as(u)
			n.refused(t, "subscribe to "+inbox, inbox, func(context.Context) error {
				_, err := n.nc.SubscribeSync(inbox)
				if err == nil {
					err = n.nc.Flush()
				}
				return err
			})
		}
	}
	for _, u := range []string{"trackers", "tracker", "review"} {
		n := as(u)
		n.refused(t, "create a consumer on report's durable", "$JS.API.CONSUMER.CREATE.AFTERACTION.report-actions", func(ctx context.Context) error {
			_, err := n.js.CreateOrUpdateConsumer(ctx, bus.StreamAfteraction, jetstream.ConsumerConfig{
				Durable: "report-actions", FilterSubject: "afteraction.action.>", AckPolicy: jetstream.AckExplicitPolicy})
			return err
		})
		n.refused(t, "delete report's durable", "$JS.API.CONSUMER.DELETE.AFTERACTION.report-actions", func(ctx context.Context) error {
			return n.js.DeleteConsumer(ctx, bus.StreamAfteraction, "report-actions")
		})
		n.refused(t, "pull from report's durable", "$JS.API.CONSUMER.MSG.NEXT.AFTERACTION.report-actions", func(ctx context.Context) error {
			return n.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.AFTERACTION.report-actions", n.nc.NewInbox(), []byte(`{"batch":1}`))
		})
	}
	for _, u := range []string{"intake", "review", "report", "tracker", "trackers"} {
		n := as(u)
		n.refused(t, "update a stream", "$JS.API.STREAM.UPDATE.AFTERACTION", func(ctx context.Context) error {
			_, err := n.js.UpdateStream(ctx, jetstream.StreamConfig{Name: bus.StreamAfteraction, Subjects: []string{"afteraction.>"}, MaxMsgs: 1})
			return err
		})
		n.refused(t, "delete a stream", "$JS.API.STREAM.DELETE.INCIDENTS", func(ctx context.Context) error {
			return n.js.DeleteStream(ctx, bus.StreamIncidents)
		})
		for _, durable := range []string{"notify-private", "notify", u} {
			n.refused(t, "create a consumer on NOTIFY", "$JS.API.CONSUMER.CREATE.NOTIFY."+durable, func(ctx context.Context) error {
				_, err := n.js.CreateOrUpdateConsumer(ctx, "NOTIFY", jetstream.ConsumerConfig{Durable: durable, FilterSubject: "notify.>"})
				return err
			})
		}
		n.refused(t, "read a NOTIFY message", "$JS.API.", func(ctx context.Context) error {
			s, err := n.js.Stream(ctx, "NOTIFY")
			if err == nil {
				_, err = s.GetMsg(ctx, 1)
			}
			return err
		})
	}
	notifyPrivateStreamIsNotifysAlone(t, as, operator)
	trackers := as("trackers")
	trackers.refused(t, "read INCIDENTS", "$JS.API.CONSUMER.CREATE.INCIDENTS", func(ctx context.Context) error {
		_, err := trackers.js.CreateOrUpdateConsumer(ctx, bus.StreamIncidents, jetstream.ConsumerConfig{Durable: "trackers", FilterSubject: "incidents.closed.>"})
		return err
	})
	trackers.refused(t, "read review events", "$JS.API.CONSUMER.CREATE.AFTERACTION.trackers.afteraction.review", func(ctx context.Context) error {
		_, err := trackers.js.CreateOrUpdateConsumer(ctx, bus.StreamAfteraction, jetstream.ConsumerConfig{Durable: "trackers", FilterSubject: "afteraction.review.>"})
		return err
	})

	for _, u := range []string{"intake", "report", "tracker", "notify", "trackers", "upstream", "operator"} {
		n := as(u)
		n.refused(t, "publish an invitation", "notify.review.invitation", func(ctx context.Context) error {
			if err := n.nc.Publish("notify.review.invitation", []byte("{}")); err != nil {
				return err
			}
			return n.nc.Flush()
		})
	}

	// What trackers may do still works: its own durable, on action events.
	if _, err := operator.js.Publish(ctx, "afteraction.action.created", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	cons, err := trackers.js.CreateOrUpdateConsumer(ctx, bus.StreamAfteraction, jetstream.ConsumerConfig{
		Durable: "trackers", FilterSubject: "afteraction.action.>", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("trackers creating its own durable: %v", err)
	}
	if got := fetchAndAck(t, cons, "trackers"); got != 1 {
		t.Errorf("trackers fetched %d action events, want 1", got)
	}
	if _, err := report.js.Consumer(ctx, bus.StreamAfteraction, "report-actions"); err != nil {
		t.Errorf("report's durable after the attempts: %v", err)
	}
}

// Issue 8: invitation links are bearer secrets. Only review may publish to
// the private NOTIFY stream and only notify may read it: not even the
// operator, who may do everything else with the JetStream API.
func notifyPrivateStreamIsNotifysAlone(t *testing.T, as func(string) *natsUser, operator *natsUser) {
	t.Helper()
	ctx := context.Background()
	review, notify := as("review"), as("notify")
	if _, err := review.js.Publish(ctx, "notify.review.invitation", []byte(`{"form_url":"secret"}`)); err != nil {
		t.Fatalf("review publishing an invitation: %v", err)
	}
	operator.refused(t, "create a consumer on NOTIFY", "$JS.API.CONSUMER.CREATE.NOTIFY", func(ctx context.Context) error {
		_, err := operator.js.CreateOrUpdateConsumer(ctx, "NOTIFY", jetstream.ConsumerConfig{Durable: "peek", FilterSubject: "notify.>"})
		return err
	})
	operator.refused(t, "pull from notify's durable", "$JS.API.CONSUMER.MSG.NEXT.NOTIFY.notify-private", func(context.Context) error {
		return operator.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.NOTIFY.notify-private", operator.nc.NewInbox(), []byte(`{"batch":1}`))
	})
	operator.refused(t, "get a NOTIFY message", "$JS.API.STREAM.MSG.GET.NOTIFY", func(ctx context.Context) error {
		s, err := operator.js.Stream(ctx, "NOTIFY")
		if err == nil {
			_, err = s.GetMsg(ctx, 1)
		}
		return err
	})
	operator.refused(t, "direct-get a NOTIFY message", "$JS.API.DIRECT.GET.NOTIFY", func(ctx context.Context) error {
		return operator.nc.PublishRequest("$JS.API.DIRECT.GET.NOTIFY", operator.nc.NewInbox(), []byte(`{"seq":1}`))
	})
	// notify reads it through its own durable
	cons, err := notify.js.CreateOrUpdateConsumer(ctx, "NOTIFY", jetstream.ConsumerConfig{Durable: "notify-private",
		FilterSubjects: []string{"notify.review.invitation", "notify.review.meeting"}, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("notify creating its durable: %v", err)
	}
	if got := fetchAndAck(t, cons, "notify"); got != 1 {
		t.Errorf("notify read %d invitations, want 1", got)
	}
}

// fetchAndAck fetches up to one message from cons as who, acks what came and
// returns how many did.
func fetchAndAck(t *testing.T, cons jetstream.Consumer, who string) int {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		got++
		if err := m.Ack(); err != nil {
			t.Errorf("%s acking: %v", who, err)
		}
	}
	return got
}

// Service users create the streams but cannot change them: a changed
// configuration leaves the stream as it is (and is logged), until the
// operator applies it (afteraction topology).
func TestOnlyTheOperatorChangesStreams(t *testing.T) {
	url, pw := deployedNATS(t)
	ctx := context.Background()
	connectAs := func(user string) *bus.Bus {
		b, err := bus.Connect(ctx, url, user, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), bus.Options{User: user, Password: pw[user]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	smaller := bus.Topology{Limits: map[string]bus.StreamLimits{bus.StreamAfteraction: {MaxBytes: 1 << 30}}}
	intakeBus := connectAs("intake")
	if err := intakeBus.EnsureTopology(ctx, bus.Topology{}); err != nil {
		t.Fatalf("intake creating the topology: %v", err)
	}
	if err := intakeBus.EnsureTopology(ctx, smaller); err != nil {
		t.Fatalf("intake ensuring a changed topology: %v, want a logged warning only", err)
	}
	maxBytes := func() int64 {
		js, err := jetstream.New(dialAs(t, url, "operator", pw["operator"]).nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, bus.StreamAfteraction)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.MaxBytes
	}
	if got := maxBytes(); got != bus.DefaultLimits[bus.StreamAfteraction].MaxBytes {
		t.Errorf("after intake: AFTERACTION max bytes = %d, want unchanged", got)
	}
	if err := connectAs("operator").ApplyTopology(ctx, smaller); err != nil {
		t.Fatalf("operator applying the topology: %v", err)
	}
	if got := maxBytes(); got != 1<<30 {
		t.Errorf("after the operator: AFTERACTION max bytes = %d, want 1 GiB", got)
	}
}
