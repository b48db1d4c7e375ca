package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/afteraction/afteraction/services/tracker/bridge"
)

// demoHookName is the generic webhook bridge the demo configures when no
// TRACKER_BRIDGES or TRACKER_BRIDGES_FILE points it at a real tracker.
const demoHookName = "demo-hook"

// demoReceiver is the local receiver of the demo's generic webhook bridge: it
// verifies each delivery as the README tells receivers to (signature,
// timestamp window, delivery id) and keeps the ones that verify.
type demoReceiver struct {
	secret []byte
	srv    *http.Server
	url    string

	mu       sync.Mutex
	seen     map[string]bool
	received []bridge.WebhookDelivery
	refused  int
}

func startDemoReceiver() (*demoReceiver, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &demoReceiver{secret: []byte(hex.EncodeToString(secret)), url: "http://" + ln.Addr().String() + "/afteraction",
		seen: map[string]bool{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln) //nolint:errcheck // ends with Close
	return r, nil
}

// bridgesEnv is the tracker configuration that points a webhook bridge at r.
func (r *demoReceiver) bridgesEnv() map[string]string {
	doc := fmt.Sprintf(`{"bridges":[{"name":%q,"kind":"webhook","url":%q,"secret_env":"DEMO_HOOK_SECRET"}],"routes":{"default":%q}}`,
		demoHookName, r.url, demoHookName)
	return map[string]string{"TRACKER_BRIDGES": doc, "DEMO_HOOK_SECRET": string(r.secret), "TRACKER_BRIDGE_POLL": "200ms"}
}

func (r *demoReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := bridge.Verify(r.secret, req.Header, body, time.Now()); err != nil {
		r.refused++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var d bridge.WebhookDelivery
	if err := json.Unmarshal(body, &d); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !r.seen[d.ID] {
		r.seen[d.ID] = true
		r.received = append(r.received, d)
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `{"id":"DEMO-%d"}`, len(r.received))
}

func (r *demoReceiver) deliveries() []bridge.WebhookDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.WebhookDelivery(nil), r.received...)
}

func (r *demoReceiver) Close() error { return r.srv.Close() }

// sendStatus posts a signed status for actionID back to the tracker's
// inbound endpoint of the demo bridge, as a receiver would.
func (r *demoReceiver) sendStatus(ctx context.Context, trackerURL, actionID, status string) error {
	now := time.Now()
	body := []byte(fmt.Sprintf(`{"action_id":%q,"status":%q,"updated_at":%q,"changed_by":"demo receiver","note":"closed by the demo's webhook receiver"}`,
		actionID, status, now.UTC().Format(time.RFC3339)))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, trackerURL+"/v1/bridges/"+demoHookName+"/webhook", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(bridge.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(bridge.HeaderSignature, bridge.Sign(r.secret, now, body))
	req.Header.Set(bridge.HeaderDelivery, "demo-status-"+actionID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("status back through the bridge: HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}
