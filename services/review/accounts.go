package review

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Console roles: a facilitator runs reviews (participants, sign-off,
// amendments), an approver gives the second approval, compliance reads, and
// admin may do everything.
const (
	RoleFacilitator = "facilitator"
	RoleApprover    = "approver"
	RoleCompliance  = "compliance"
	RoleAdmin       = "admin"
)

var consoleRoles = []string{RoleFacilitator, RoleApprover, RoleCompliance, RoleAdmin}

// Account is a person who may sign in to the console with a password.
type Account struct {
	Login string
	Name  string
	Email string
	Roles []string
	hash  string // argon2id in PHC form
}

// Has reports whether the account holds role (admin holds every role).
func (a Account) Has(role string) bool {
	return slices.Contains(a.Roles, role) || slices.Contains(a.Roles, RoleAdmin)
}

// Accounts are the local console accounts by login.
type Accounts map[string]Account

// ParseAccounts reads the local account file: one account a line,
//
//	login:role[,role...]:email:argon2id-hash:Full Name
//
// where the hash is what HashPassword returns ($argon2id$v=19$m=...,t=...,p=...$salt$key);
// blank lines and lines starting with # are skipped. Roles are facilitator,
// approver, compliance and admin. The error names the line.
func ParseAccounts(text string) (Accounts, error) {
	accts := Accounts{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, ":", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("account line %d: want login:roles:email:hash:name", n)
		}
		a := Account{Login: f[0], Roles: strings.Split(f[1], ","), Email: f[2], hash: f[3], Name: strings.TrimSpace(f[4])}
		switch {
		case !actionKeyRE.MatchString(a.Login):
			return nil, fmt.Errorf("account line %d: login must be 1-64 letters, digits, '_', '.' or '-'", n)
		case accts[a.Login].Login != "":
			return nil, fmt.Errorf("account line %d: login %q appears twice", n, a.Login)
		case a.Name == "" || strings.ContainsFunc(a.Name, func(r rune) bool { return r < 0x20 }):
			return nil, fmt.Errorf("account line %d: the name is required, on one line", n)
		}
		if a.Email != "" {
			if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
				return nil, fmt.Errorf("account line %d: %q is not an e-mail address", n, a.Email)
			}
		}
		for _, r := range a.Roles {
			if !slices.Contains(consoleRoles, r) {
				return nil, fmt.Errorf("account line %d: unknown role %q (want %s)", n, r, strings.Join(consoleRoles, ", "))
			}
		}
		if _, err := parseArgon2id(a.hash); err != nil {
			return nil, fmt.Errorf("account line %d: %w", n, err)
		}
		accts[a.Login] = a
	}
	return accts, sc.Err()
}

// dummyHash is compared against when the login is unknown, so that a wrong
// login takes as long as a wrong password.
var dummyHash = hashPasswordWith("not a password", argon2Params{memory: 19 * 1024, time: 2, threads: 1})

// Authenticate returns the account of login if password is its password.
func (accts Accounts) Authenticate(login, password string) (Account, bool) {
	a, ok := accts[login]
	if !ok {
		verifyPassword(dummyHash, password)
		return Account{}, false
	}
	return a, verifyPassword(a.hash, password)
}

type argon2Params struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// HashPassword returns the argon2id hash of password in PHC form with
// OWASP's parameters (19 MiB, 2 passes, 1 lane), for the account file.
func HashPassword(password string) string {
	return hashPasswordWith(password, argon2Params{memory: 19 * 1024, time: 2, threads: 1})
}

// hashPasswordWith is HashPassword with explicit parameters.
func hashPasswordWith(password string, p argon2Params) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, 32)
	b64 := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads, b64(salt), b64(key))
}

var errBadHash = errors.New("password hash: want $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key> (see HashPassword)")

func parseArgon2id(s string) (argon2Params, error) {
	var p argon2Params
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, errBadHash
	}
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil || p.memory < 8 || p.time < 1 || p.threads < 1 {
		return p, errBadHash
	}
	var err1, err2 error
	p.salt, err1 = base64.RawStdEncoding.DecodeString(f[4])
	p.key, err2 = base64.RawStdEncoding.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(p.salt) < 8 || len(p.key) < 16 {
		return p, errBadHash
	}
	return p, nil
}

func verifyPassword(hash, password string) bool {
	p, err := parseArgon2id(hash)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}
