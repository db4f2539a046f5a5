package storage

import "sync"

// EventKind says what a committed change did.
type EventKind int

const (
	EventNew       EventKind = iota + 1 // a message was added to a mailbox
	EventFlags                          // a message's flags or keywords changed
	EventExpunge                        // a message was removed from a mailbox
	EventMailboxes                      // a mailbox was created, renamed or deleted
)

// Event is one committed change. Subscribers use it as a hint: the database
// holds the truth, and a session reads it with ChangesSince.
type Event struct {
	Kind      EventKind
	UserID    int64
	MailboxID int64
	UID       uint32
	ModSeq    int64
}

// Subscription receives the events of one user. C is signalled (coalesced:
// one pending signal at most) whenever events are waiting in Drain.
type Subscription struct {
	C      <-chan struct{}
	c      chan struct{}
	hub    *hub
	userID int64

	mu      sync.Mutex
	pending []Event
	lost    bool
}

// maxPending bounds the events kept for a slow subscriber; past it the
// subscriber is told it lost events and must resynchronise from the database.
const maxPending = 4096

// Drain returns the events since the last Drain. lost is true when more
// events arrived than could be kept.
func (s *Subscription) Drain() (events []Event, lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, lost = s.pending, s.lost
	s.pending, s.lost = nil, false
	return events, lost
}

// Close ends the subscription.
func (s *Subscription) Close() { s.hub.unsubscribe(s) }

func (s *Subscription) deliver(e Event) {
	s.mu.Lock()
	if len(s.pending) >= maxPending {
		s.lost = true
	} else {
		s.pending = append(s.pending, e)
	}
	s.mu.Unlock()
	select {
	case s.c <- struct{}{}:
	default:
	}
}

type hub struct {
	mu   sync.Mutex
	subs map[int64]map[*Subscription]struct{}
}

func newHub() *hub { return &hub{subs: make(map[int64]map[*Subscription]struct{})} }

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[e.UserID] {
		s.deliver(e)
	}
}

func (h *hub) unsubscribe(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.subs[s.userID]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.userID)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = make(map[int64]map[*Subscription]struct{})
}

// Subscribe returns a subscription to the committed changes of a user's
// mailboxes.
func (s *Store) Subscribe(userID int64) *Subscription {
	c := make(chan struct{}, 1)
	sub := &Subscription{C: c, c: c, hub: s.hub, userID: userID}
	s.hub.mu.Lock()
	m := s.hub.subs[userID]
	if m == nil {
		m = make(map[*Subscription]struct{})
		s.hub.subs[userID] = m
	}
	m[sub] = struct{}{}
	s.hub.mu.Unlock()
	return sub
}
