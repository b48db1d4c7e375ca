package tracker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/events"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// dueSoonDays is how far ahead "due soon" looks.
const dueSoonDays = 7

// SendDigests emits this week's afteraction.action.digest for every owner
// and every facilitator with something overdue, due within seven days or
// done this week (in the service's zone), unless weekday (the day digests go
// out) is still to come this ISO week. Each digest is claimed per recipient,
// role and week in the transaction that writes it to the outbox, so
// replicas and restarts send it at most once. It returns how many it emitted.
func (s *Service) SendDigests(ctx context.Context, weekday time.Weekday) (int, error) {
	now := s.now()
	local := now.In(s.zone)
	offset := (int(local.Weekday()) + 6) % 7 // days since Monday
	if offset < (int(weekday)+6)%7 {
		return 0, nil
	}
	year, wk := local.ISOWeek()
	week := fmt.Sprintf("%04d-W%02d", year, wk)
	today := local.Format(time.DateOnly)
	day, _ := time.Parse(time.DateOnly, today)
	soon := day.AddDate(0, 0, dueSoonDays).Format(time.DateOnly)
	monday := time.Date(local.Year(), local.Month(), local.Day()-offset, 0, 0, 0, 0, s.zone)

	as, err := s.store.DigestActions(ctx, today, soon, monday)
	if err != nil {
		return 0, err
	}
	type key struct{ who, role string }
	digests := map[key]*events.ActionDigest{}
	add := func(c *events.Owner, role string, a Action) {
		if c == nil || (c.Name == "" && c.Email == "") {
			return
		}
		who := strings.ToLower(c.Email)
		if who == "" {
			who = "name:" + c.Name
		}
		k := key{who, role}
		d := digests[k]
		if d == nil {
			d = &events.ActionDigest{Recipient: events.Contact{Name: c.Name, Email: c.Email}, Role: role, Week: week,
				Today: today, GeneratedAt: now, Overdue: []events.DigestItem{}, DueSoon: []events.DigestItem{},
				DoneThisWeek: []events.DigestItem{}}
			if d.Recipient.Name == "" {
				d.Recipient.Name = c.Email
			}
			digests[k] = d
		}
		item := events.DigestItem{ActionID: a.ActionID, IncidentID: a.IncidentID, IncidentTitle: a.IncidentTitle,
			Title: a.Title, Status: a.Status, Priority: a.Priority, DueDate: a.DueDate, Owner: a.Owner}
		switch {
		case a.Status == events.StatusDone:
			d.DoneCount++
			if len(d.DoneThisWeek) < events.MaxDigestItems {
				d.DoneThisWeek = append(d.DoneThisWeek, item)
			}
		case a.DueDate < today:
			due, _ := time.Parse(time.DateOnly, a.DueDate)
			item.DaysOverdue = int(day.Sub(due).Hours() / 24)
			d.OverdueCount++
			if len(d.Overdue) < events.MaxDigestItems {
				d.Overdue = append(d.Overdue, item)
			}
		default:
			d.DueSoonCount++
			if len(d.DueSoon) < events.MaxDigestItems {
				d.DueSoon = append(d.DueSoon, item)
			}
		}
	}
	for _, a := range as {
		add(a.Owner, events.DigestRoleOwner, a)
		add(a.Facilitator, events.DigestRoleFacilitator, a)
	}
	keys := make([]key, 0, len(digests))
	for k := range digests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].who != keys[j].who {
			return keys[i].who < keys[j].who
		}
		return keys[i].role < keys[j].role
	})
	sent := 0
	for _, k := range keys {
		d := digests[k]
		d.DigestID = uuid.NewSHA1(actionNamespace, []byte("digest/"+k.role+"/"+k.who+"/"+week)).String()
		ok := false
		err := s.store.InTx(ctx, func(tx *store.Tx) error {
			claimed, err := tx.ClaimDigest(ctx, k.who, k.role, week, d.DigestID, now)
			if err != nil || !claimed {
				ok = false
				return err
			}
			env, err := events.New(events.TypeActionDigest, Source, d.DigestID, d)
			if err != nil {
				return err
			}
			env.ID = d.DigestID
			ok = true
			return tx.Enqueue(ctx, events.SubjectActionDigest, env)
		})
		if err != nil {
			return sent, fmt.Errorf("send digest of %s for %s: %w", k.who, week, err)
		}
		if ok {
			sent++
		}
	}
	s.metrics.digests.Add(float64(sent))
	return sent, nil
}
