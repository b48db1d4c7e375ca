package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/afteraction/afteraction/services/review"
)

// runAccount prints one line of the review console's account file
// (REVIEW_CONSOLE_ACCOUNTS_FILE) with an argon2id hash of the password read
// from standard input, so an operator never writes a password into a file or
// onto a command line. The line is checked with the same parser the review
// service uses, so a line this prints is a line the service accepts.
func runAccount(args []string) error {
	return writeAccount(args, os.Stdin, os.Stdout)
}

func writeAccount(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("console-account", flag.ContinueOnError)
	login := fs.String("login", "", "the login (letters, digits, '_', '.', '-')")
	roles := fs.String("roles", "facilitator", "comma-separated roles: facilitator, approver, compliance, admin")
	email := fs.String("email", "", "the person's e-mail address (optional)")
	name := fs.String("name", "", "the person's full name, recorded on what they sign off")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: afteraction console-account -login L -name N [-roles R] [-email E] < password\n"+
			"prints a line for REVIEW_CONSOLE_ACCOUNTS_FILE; the password is the first line of standard input\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	password, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the password from standard input: %w", err)
	}
	password = strings.TrimRight(password, "\r\n")
	if len(password) < 12 {
		return errors.New("the password (first line of standard input) must have at least 12 characters")
	}
	line := fmt.Sprintf("%s:%s:%s:%s:%s", *login, *roles, *email, review.HashPassword(password), *name)
	accts, err := review.ParseAccounts(line)
	if err != nil {
		return fmt.Errorf("%s (flags -login, -roles, -email, -name)", strings.TrimPrefix(err.Error(), "account line 1: "))
	}
	if _, ok := accts.Authenticate(*login, password); !ok {
		return errors.New("the hashed line does not authenticate its own password")
	}
	_, err = fmt.Fprintln(out, line)
	return err
}
