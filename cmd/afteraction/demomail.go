package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"
)

// scheduleDemoMeeting schedules the review's debrief meeting at the time the
// review service suggests (the severity policy's "within several days"), so
// every participant is sent a calendar invitation.
func scheduleDemoMeeting(ctx context.Context, s *Stack, reviewID string) error {
	var m struct {
		SuggestedStartsAt time.Time `json:"suggested_starts_at"`
		StartsAt          time.Time `json:"starts_at"`
		Attendees         []any     `json:"attendees"`
	}
	u := s.URLs["review"] + "/v1/reviews/" + reviewID + "/meeting"
	if err := getJSON(ctx, u, s.AdminToken, &m); err != nil {
		return err
	}
	body := map[string]any{"starts_at": m.SuggestedStartsAt, "duration_minutes": 60,
		"location": "Room 4.12, Hamburg", "video_url": "https://meet.example.com/debrief"}
	if err := call(ctx, http.MethodPut, u, s.AdminToken, body, &m); err != nil {
		return fmt.Errorf("schedule the debrief meeting: %w", err)
	}
	fmt.Printf("debrief meeting scheduled for %s with %d attendees\n", m.StartsAt.Format(time.RFC1123), len(m.Attendees))
	return nil
}

type deliveryView struct {
	Reason    string `json:"reason"`
	Channel   string `json:"channel"`
	Subject   string `json:"subject"`
	Status    string `json:"status"`
	LastError string `json:"last_error"`
	Recipient struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"recipient"`
}

// settledDeliveries waits until notify has nothing left pending or sending
// and the number of deliveries stopped growing, then returns them oldest first.
func settledDeliveries(ctx context.Context, s *Stack) ([]deliveryView, error) {
	var ds []deliveryView
	last, stable := -1, 0
	err := poll(ctx, "notify to send every mail", 60*time.Second, func() (bool, error) {
		var list struct {
			Deliveries []deliveryView `json:"deliveries"`
		}
		if err := getJSON(ctx, s.URLs["notify"]+"/v1/deliveries?limit=1000", s.AdminToken, &list); err != nil {
			return false, err
		}
		ds = list.Deliveries
		for _, d := range ds {
			if d.Status == "pending" || d.Status == "sending" {
				return false, nil
			}
		}
		if len(ds) == last {
			stable++
		} else {
			last, stable = len(ds), 0
		}
		return stable >= 40, nil // unchanged for two seconds
	})
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds, err
}

// printMails names every delivery notify made and where to read the mail.
func printMails(ds []deliveryView, s *Stack, mailDir string) {
	fmt.Printf("mails        %d deliveries by notify:\n", len(ds))
	for _, d := range ds {
		line := fmt.Sprintf("               - %-4s %-17s to %s <%s>: %s", d.Status, d.Reason, d.Recipient.Name, d.Recipient.Email, d.Subject)
		if d.Channel != "mail" {
			line += " (" + d.Channel + ")"
		}
		if d.Status == "dead" {
			line += "  [" + d.LastError + "]"
		}
		fmt.Println(line)
	}
	if s.MailURL != "" {
		fmt.Printf("             mailpit showed them at %s while the demo ran; to read them now:\n"+
			"               mailpit --database %s  (then open http://127.0.0.1:8025)\n",
			s.MailURL, filepath.Join(mailDir, "mailpit.db"))
	} else {
		fmt.Printf("             no mailpit: %s\n", s.MailNote)
	}
}
