package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/afteraction/afteraction/services/review"
)

func TestConsoleAccountLineSignsIn(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := writeAccount([]string{"-login", "ines", "-roles", "facilitator,approver", "-email", "ines@example.com", "-name", "Inès Beaumont"},
		strings.NewReader("correct horse battery\n"), &out)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := review.ParseAccounts(out.String())
	if err != nil {
		t.Fatalf("the printed line %q does not parse: %v", out.String(), err)
	}
	a, ok := accts.Authenticate("ines", "correct horse battery")
	if !ok || a.Name != "Inès Beaumont" || !a.Has(review.RoleApprover) {
		t.Fatalf("account %+v, authenticated %v", a, ok)
	}
	if _, ok := accts.Authenticate("ines", "wrong password!!"); ok {
		t.Fatal("a wrong password signs in")
	}
	if strings.Contains(out.String(), "correct horse") {
		t.Fatal("the password appears in the output")
	}
}

func TestConsoleAccountRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, password, want string
		args                 []string
	}{
		{"short password", "short\n", "at least 12", []string{"-login", "a", "-name", "A"}},
		{"unknown role", "long enough password\n", "unknown role", []string{"-login", "a", "-name", "A", "-roles", "boss"}},
		{"no name", "long enough password\n", "name", []string{"-login", "a"}},
		{"bad login", "long enough password\n", "login", []string{"-login", "a b", "-name", "A"}},
		{"bad e-mail", "long enough password\n", "e-mail", []string{"-login", "a", "-name", "A", "-email", "not-an-address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := writeAccount(tc.args, strings.NewReader(tc.password), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if out.Len() != 0 {
				t.Fatalf("printed %q for bad input", out.String())
			}
		})
	}
}
