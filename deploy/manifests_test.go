package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/notify"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/review"
	"github.com/afteraction/afteraction/services/tracker"
)

// inspectors runs each service's LoadConfig over an environment.
var inspectors = map[string]func(env map[string]string) config.Inspection{
	"intake":  func(env map[string]string) config.Inspection { return config.Inspect(intake.LoadConfig, env) },
	"review":  func(env map[string]string) config.Inspection { return config.Inspect(review.LoadConfig, env) },
	"report":  func(env map[string]string) config.Inspection { return config.Inspect(report.LoadConfig, env) },
	"tracker": func(env map[string]string) config.Inspection { return config.Inspect(tracker.LoadConfig, env) },
	"notify":  func(env map[string]string) config.Inspection { return config.Inspect(notify.LoadConfig, env) },
}

const (
	composeFile = "../docker-compose.yml"
	k8sFile     = "k8s/afteraction.yaml"
)

func TestComposeFile(t *testing.T) {
	t.Parallel()
	for _, p := range composeProblems(t, readFile(t, composeFile)) {
		t.Error(p)
	}
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	for _, p := range k8sProblems(t, readFile(t, k8sFile)) {
		t.Error(p)
	}
}

// The checks fail on the mistakes they are there for: each edit of a
// deployment file below must be reported, naming what is wrong.
func TestDeploymentMistakesAreCaught(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, old, new string
		check                func(*testing.T, []byte) []string
		want                 []string
	}{
		{"compose: misspelt variable", composeFile,
			"REVIEW_INVITE_SECRET: change-me", "REVIEW_INVITE_SECRT: change-me", composeProblems,
			[]string{"review: unknown variable REVIEW_INVITE_SECRT", "review: REVIEW_INVITE_SECRET: required"}},
		{"compose: required variable missing", composeFile,
			"      API_TOKENS: admin:change-me-admin-token,intake:change-me-intake-token\n", "", composeProblems,
			[]string{"intake: ", "API_TOKENS is empty"}},
		{"compose: value refused", composeFile,
			"NOTIFY_SMTP_TLS: none", "NOTIFY_SMTP_TLS: sometimes", composeProblems,
			[]string{"notify: ", "NOTIFY_SMTP_TLS"}},
		{"compose: another service's password", composeFile,
			"NATS_PASSWORD: tracker-dev-pw", "NATS_PASSWORD: review-dev-pw", composeProblems,
			[]string{"tracker: NATS_PASSWORD is not the nats service's TRACKER_NATS_PASSWORD"}},
		{"compose: a key compose does not know", composeFile,
			"  restart: unless-stopped", "  restart: unless-stopped\n  restarts: always", composeProblems,
			[]string{"restarts"}},
		{"k8s: misspelt variable", k8sFile,
			`{name: NOTIFY_SMTP_PORT, value: "587"}`, `{name: NOTIFY_SMTP_PROT, value: "587"}`, k8sProblems,
			[]string{"notify: unknown variable NOTIFY_SMTP_PROT"}},
		{"k8s: a field the API does not have", k8sFile,
			"terminationGracePeriodSeconds: 90", "terminationGracePeriod: 90", k8sProblems,
			[]string{"document 10 (Deployment)", `unknown field "terminationGracePeriod"`}},
		{"k8s: port and HTTP_ADDR disagree", k8sFile,
			`{name: HTTP_ADDR, value: ":8084"}`, `{name: HTTP_ADDR, value: ":9084"}`, k8sProblems,
			[]string{"tracker: HTTP_ADDR port 9084"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text := readFile(t, tc.file)
			if !bytes.Contains(text, []byte(tc.old)) {
				t.Fatalf("%s no longer contains %q: update this case", tc.file, tc.old)
			}
			got := strings.Join(tc.check(t, bytes.Replace(text, []byte(tc.old), []byte(tc.new), 1)), "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems reported:\n%s\nwant one containing %q", got, w)
				}
			}
		})
	}
}

// composeProblems loads text as docker-compose.yml, as Docker Compose does
// (schema validation included), and checks each afteraction service's
// environment against its LoadConfig: every variable known, LoadConfig
// content with it (nothing required missing, no value refused), the NATS
// password the one the nats service gives that user. Paths of files mounted
// into a container are read from the host path they are mounted from.
func composeProblems(t *testing.T, text []byte) []string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml"), Content: text}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("afteraction", true) })
	if err != nil {
		return []string{fmt.Sprintf("docker-compose.yml: %v", err)}
	}
	var problems []string
	natsEnv := project.Services["nats"].Environment
	var built []string
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue
		}
		built = append(built, name)
		inspect, ok := inspectors[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: a service built from this repository that the test does not know", name))
			continue
		}
		if arg := svc.Build.Args["SERVICE"]; arg == nil || *arg != name {
			problems = append(problems, fmt.Sprintf("%s: built with SERVICE=%v, want %s", name, arg, name))
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			if v == nil {
				problems = append(problems, fmt.Sprintf("%s: %s has no value (it would be taken from the host)", name, k))
				continue
			}
			env[k] = hostPath(*v, svc.Volumes)
		}
		problems = append(problems, inspectionProblems(name, inspect(env), true)...)
		if pw := natsEnv[strings.ToUpper(env["NATS_USER"])+"_NATS_PASSWORD"]; pw == nil || *pw != env["NATS_PASSWORD"] {
			problems = append(problems, fmt.Sprintf("%s: NATS_PASSWORD is not the nats service's %s_NATS_PASSWORD",
				name, strings.ToUpper(env["NATS_USER"])))
		}
	}
	slices.Sort(built)
	if want := sortedKeys(inspectors); !slices.Equal(built, want) {
		problems = append(problems, fmt.Sprintf("services built: %q, want %q", built, want))
	}
	return problems
}

// hostPath returns value with the container path of a bind mount replaced by
// the host path it comes from, so LoadConfig can read the mounted file.
func hostPath(value string, volumes []types.ServiceVolumeConfig) string {
	for _, v := range volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if rest, ok := strings.CutPrefix(value, v.Target); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
			return v.Source + rest
		}
	}
	return value
}

// k8sProblems decodes every document of text strictly into its Kubernetes API
// type (an unknown kind or field is a problem) and checks the environment of
// each Deployment's container against the service's LoadConfig: every
// variable set in the manifest known, HTTP_ADDR on the container's port. What
// comes from the Secrets (envFrom) is not in the file, so missing required
// variables cannot be told here; the compose check covers them.
func k8sProblems(t *testing.T, text []byte) []string {
	t.Helper()
	var problems []string
	deployments := map[string]bool{}
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(text)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", k8sFile, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %v", i, err))
			continue
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 Namespace":
			obj = &corev1.Namespace{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		default:
			problems = append(problems, fmt.Sprintf("document %d: kind %q of %q: not one this test knows", i, meta.Kind, meta.APIVersion))
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			problems = append(problems, fmt.Sprintf("document %d (%s): %v", i, meta.Kind, err))
			continue
		}
		if d, ok := obj.(*appsv1.Deployment); ok {
			deployments[d.Name] = true
			problems = append(problems, deploymentProblems(d)...)
		}
	}
	if got, want := sortedKeys(deployments), sortedKeys(inspectors); !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("deployments: %q, want %q", got, want))
	}
	return problems
}

func deploymentProblems(d *appsv1.Deployment) []string {
	inspect, ok := inspectors[d.Name]
	if !ok {
		return []string{fmt.Sprintf("deployment %s: not a service this test knows", d.Name)}
	}
	var problems []string
	for _, c := range d.Spec.Template.Spec.Containers {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
			if e.ValueFrom != nil {
				env[e.Name] = "from-" + e.Name
			}
		}
		problems = append(problems, inspectionProblems(d.Name, inspect(env), false)...)
		_, port, err := net.SplitHostPort(env["HTTP_ADDR"])
		if err != nil || len(c.Ports) != 1 || fmt.Sprint(c.Ports[0].ContainerPort) != port {
			problems = append(problems, fmt.Sprintf("%s: HTTP_ADDR port %s, container ports %v: want the one port HTTP_ADDR names", d.Name, port, c.Ports))
		}
	}
	return problems
}

// inspectionProblems reports the variables service does not know and, when
// complete says env is the whole environment, LoadConfig's refusal.
func inspectionProblems(service string, in config.Inspection, complete bool) []string {
	var problems []string
	for _, v := range in.Unknown {
		problems = append(problems, fmt.Sprintf("%s: unknown variable %s (the service ignores it)", service, v))
	}
	if complete && in.Err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", service, in.Err))
	}
	return problems
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
