package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// throwawayPostgres is a Postgres cluster made for one run of `afteraction
// dev` or `demo` on a machine where no Postgres answers: initdb in a
// temporary directory, a postmaster on a free loopback port (and a socket in
// that directory only), a random superuser password. Stop shuts it down and
// removes the directory.
type throwawayPostgres struct {
	dir, binDir, version string
	port                 int
	url                  *url.URL // the superuser on the cluster, database "postgres"
	runAs                *syscall.Credential
	stopOnce             sync.Once
	stopErr              error
}

// errNoPostgresBinaries is returned by startThrowawayPostgres when neither
// /usr/lib/postgresql/<version>/bin nor PATH has initdb and pg_ctl.
var errNoPostgresBinaries = errors.New("no Postgres binaries (initdb, pg_ctl): install the Debian package postgresql, or put them on PATH")

// postgresBinDir returns the directory of initdb and pg_ctl: the newest
// /usr/lib/postgresql/<version>/bin (Debian's layout, not on PATH), else the
// directory of pg_ctl on PATH.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errNoPostgresBinaries
}

// pgMajor is the major version in /usr/lib/postgresql/<major>/bin, 0 if none.
func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// noPostgresAnswers reports whether err, from connecting to dsn, means that
// no server listens there on this machine: the host is a loopback address
// (or a socket directory) and the connection was refused or the socket is
// missing. Anything else (a remote host, a wrong password, a missing role)
// is a real error, and no throwaway cluster hides it.
func noPostgresAnswers(dsn string, err error) bool {
	if err == nil {
		return false
	}
	cfg, perr := pgx.ParseConfig(dsn)
	if perr != nil {
		return false
	}
	host := cfg.Host
	ip := net.ParseIP(host)
	local := host == "localhost" || strings.HasPrefix(host, "/") || (ip != nil && ip.IsLoopback())
	return local && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT))
}

// startThrowawayPostgres initialises and starts a cluster whose superuser is
// superuser. As root it runs the binaries as the user postgres (initdb
// refuses to run as root), which the Debian package creates.
func startThrowawayPostgres(ctx context.Context, superuser string) (*throwawayPostgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	p := &throwawayPostgres{binDir: bin}
	if os.Geteuid() == 0 {
		if p.runAs, err = credentialOf("postgres"); err != nil {
			return nil, fmt.Errorf("throwaway postgres: initdb does not run as root and %w", err)
		}
	}
	if p.dir, err = os.MkdirTemp("", "afteraction-pg-"); err != nil {
		return nil, err
	}
	if err := p.start(ctx, superuser); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("throwaway postgres (%s): %w", bin, err)
	}
	return p, nil
}

func (p *throwawayPostgres) start(ctx context.Context, superuser string) error {
	if p.runAs != nil {
		if err := os.Chown(p.dir, int(p.runAs.Uid), int(p.runAs.Gid)); err != nil {
			return err
		}
	}
	password := make([]byte, 18)
	_, _ = rand.Read(password)
	pwfile := filepath.Join(p.dir, "pwfile")
	if err := p.writeOwned(pwfile, hex.EncodeToString(password)+"\n"); err != nil {
		return err
	}
	data := filepath.Join(p.dir, "data")
	if err := p.run(ctx, "initdb", "-D", data, "-U", superuser, "--pwfile", pwfile, "-A", "scram-sha-256",
		"-E", "UTF8", "--locale", "C", "--no-sync", "--no-instructions"); err != nil {
		return err
	}
	if err := os.Remove(pwfile); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	// The cluster lives as long as the run and is removed afterwards: fsync
	// buys nothing here.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c max_connections=200", port, p.dir)
	if err := p.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(p.dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("%w (log: %s)", err, p.logTail())
	}
	p.port = port
	p.url = &url.URL{Scheme: "postgres", User: url.UserPassword(superuser, hex.EncodeToString(password)),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	out, err := exec.CommandContext(ctx, filepath.Join(p.binDir, "postgres"), "--version").Output()
	if err == nil {
		p.version = strings.TrimSpace(string(out))
	}
	return nil
}

// URL returns the URL of database name on the cluster.
func (p *throwawayPostgres) URL(name string) string {
	u := *p.url
	u.Path = "/" + name
	return u.String()
}

// Note says what was started, for the person running the command.
func (p *throwawayPostgres) Note() string {
	return fmt.Sprintf("throwaway cluster on 127.0.0.1:%d in %s (%s, %s), removed on exit",
		p.port, p.dir, orDefault(p.version, "postgres"), p.binDir)
}

// Stop shuts the cluster down (fast: open connections are closed) and
// removes its directory. It is safe to call more than once.
func (p *throwawayPostgres) Stop() error {
	p.stopOnce.Do(func() {
		data := filepath.Join(p.dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			p.stopErr = p.run(context.Background(), "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "60", "stop")
		}
		p.stopErr = errors.Join(p.stopErr, os.RemoveAll(p.dir))
	})
	return p.stopErr
}

func (p *throwawayPostgres) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(p.binDir, name), args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Its own process group: the Ctrl-C that stops afteraction must not
	// reach the postmaster before the services have drained.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.runAs}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// writeOwned writes a file only the cluster's user can read.
func (p *throwawayPostgres) writeOwned(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	if p.runAs != nil {
		return os.Chown(path, int(p.runAs.Uid), int(p.runAs.Gid))
	}
	return nil
}

func (p *throwawayPostgres) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], " | ")
}

func credentialOf(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("there is no user %q to run it as: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// postgresFor returns the URL to use for dsn: dsn itself when a server
// answers there, or, when none does on this machine and throwaway is set,
// the same database on a throwaway cluster started for the run (the caller
// stops it). The database is not created here.
func postgresFor(ctx context.Context, dsn string, throwaway bool) (string, *throwawayPostgres, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("database url: %w", err)
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err == nil {
		conn.Close(ctx)
		return dsn, nil, nil
	}
	if !throwaway || !noPostgresAnswers(dsn, err) {
		return "", nil, fmt.Errorf("connect to postgres at %s: %w", u.Redacted(), err)
	}
	pg, err := startThrowawayPostgres(ctx, orDefault(u.User.Username(), "postgres"))
	if err != nil {
		return "", nil, fmt.Errorf("no Postgres answers at %s, and %w", u.Host, err)
	}
	return pg.URL(strings.TrimPrefix(u.Path, "/")), pg, nil
}
