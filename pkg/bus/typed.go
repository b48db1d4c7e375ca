package bus

import (
	"fmt"

	"github.com/afteraction/afteraction/pkg/events"
)

// PrepareTyped is a ConsumerConfig.Prepare for consumers of events of type
// typ: it checks the ce-type and validates and decodes the data into T on the
// consumer's prepare workers, in parallel and ahead of the handler. Typed
// then hands the decoded value to its function without decoding again. A
// wrong type or invalid data is permanent, as in Typed.
func PrepareTyped[T any](typ string) func(*Message) (any, error) {
	return func(m *Message) (any, error) {
		e, err := decodeTyped[T](typ, m)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

func decodeTyped[T any](typ string, m *Message) (T, error) {
	var zero T
	if m.Envelope.Type != typ {
		return zero, Permanent(fmt.Errorf("ce-type %q: this consumer takes %q", m.Envelope.Type, typ))
	}
	e, err := events.Decode[T](typ, m.Envelope.Data)
	if err != nil {
		return zero, Permanent(fmt.Errorf("invalid %s: %w", typ, err))
	}
	return e, nil
}
