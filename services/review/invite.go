package review

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"
)

// ErrInvalidInvite is returned for an invitation token that is malformed,
// forged, expired or for another review.
var ErrInvalidInvite = errors.New("invalid invitation token")

// Invites signs and checks invitation tokens: base64url of the participant id
// (16 bytes), the expiry (8 bytes, Unix seconds), from the first renewal on
// the participant's invitation generation (4 bytes), and an HMAC-SHA256 over
// the review id and all of these. A token is scoped to one review, one
// participant and one generation: revoking or resending an invitation bumps
// the generation and so invalidates that participant's earlier links only.
type Invites struct {
	Secret []byte
	// TTL is how long after a review opens its invitations stay valid.
	TTL time.Duration
}

const (
	inviteLen    = 16 + 8 + sha256.Size
	inviteGenLen = inviteLen + 4
)

// Token returns the invitation token of participantID for reviewID in
// invitation generation gen, valid until expires. The same inputs always give
// the same token; generation 0 gives the token of the first invitation.
func (iv Invites) Token(reviewID, participantID string, gen int, expires time.Time) string {
	pid, err := uuid.Parse(participantID)
	if err != nil {
		return ""
	}
	b := make([]byte, 0, inviteGenLen)
	b = append(b, pid[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(expires.Unix()))
	if gen > 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(gen))
	}
	b = append(b, iv.mac(reviewID, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Expiry is when the invitations of a review opened at openedAt expire.
func (iv Invites) Expiry(openedAt time.Time) time.Time { return openedAt.Add(iv.TTL) }

// Verify checks token against reviewID at now and returns the participant it
// invites and its invitation generation, or ErrInvalidInvite. Whether that
// generation is still the participant's current one is the caller's check.
func (iv Invites) Verify(reviewID, token string, now time.Time) (string, int, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || (len(b) != inviteLen && len(b) != inviteGenLen) {
		return "", 0, ErrInvalidInvite
	}
	signed := len(b) - sha256.Size
	if !hmac.Equal(b[signed:], iv.mac(reviewID, b[:signed])) {
		return "", 0, ErrInvalidInvite
	}
	if now.Unix() > int64(binary.BigEndian.Uint64(b[16:24])) {
		return "", 0, ErrInvalidInvite
	}
	pid, err := uuid.FromBytes(b[:16])
	if err != nil {
		return "", 0, ErrInvalidInvite
	}
	gen := 0
	if signed == 28 {
		gen = int(binary.BigEndian.Uint32(b[24:28]))
	}
	return pid.String(), gen, nil
}

func (iv Invites) mac(reviewID string, payload []byte) []byte {
	m := hmac.New(sha256.New, iv.Secret)
	m.Write([]byte("afteraction-review-invite\x00"))
	m.Write([]byte(reviewID))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)
}
