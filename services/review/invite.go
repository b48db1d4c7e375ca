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
// (16 bytes), the expiry (8 bytes, Unix seconds) and an HMAC-SHA256 over the
// review id, participant id and expiry. A token is scoped to one review and
// one participant.
type Invites struct {
	Secret []byte
	// TTL is how long after a review opens its invitations stay valid.
	TTL time.Duration
}

const inviteLen = 16 + 8 + sha256.Size

// Token returns the invitation token of participantID for reviewID, valid
// until expires. The same inputs always give the same token.
func (iv Invites) Token(reviewID, participantID string, expires time.Time) string {
	pid, err := uuid.Parse(participantID)
	if err != nil {
		return ""
	}
	b := make([]byte, 0, inviteLen)
	b = append(b, pid[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(expires.Unix()))
	b = append(b, iv.mac(reviewID, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Expiry is when the invitations of a review opened at openedAt expire.
func (iv Invites) Expiry(openedAt time.Time) time.Time { return openedAt.Add(iv.TTL) }

// Verify checks token against reviewID at now and returns the participant it
// invites, or ErrInvalidInvite.
func (iv Invites) Verify(reviewID, token string, now time.Time) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != inviteLen {
		return "", ErrInvalidInvite
	}
	if !hmac.Equal(b[24:], iv.mac(reviewID, b[:24])) {
		return "", ErrInvalidInvite
	}
	if now.Unix() > int64(binary.BigEndian.Uint64(b[16:24])) {
		return "", ErrInvalidInvite
	}
	pid, err := uuid.FromBytes(b[:16])
	if err != nil {
		return "", ErrInvalidInvite
	}
	return pid.String(), nil
}

func (iv Invites) mac(reviewID string, payload []byte) []byte {
	m := hmac.New(sha256.New, iv.Secret)
	m.Write([]byte("afteraction-review-invite\x00"))
	m.Write([]byte(reviewID))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)
}
