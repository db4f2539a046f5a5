package pop3

// handler is one command: the states it is allowed in and what it does.
type handler struct {
	states state // bitmask of the states the command is valid in
	fn     func(*conn, *command) error
}

// defaultCommands is the dispatch table. APOP is not offered: it needs the
// plaintext password on the server, and pombo stores only argon2id hashes.
func defaultCommands() map[string]handler {
	const (
		authz = stateAuthorization
		trans = stateTransaction
	)
	return map[string]handler{
		// RFC 2449 §5: CAPA in both states.
		"CAPA": {authz | trans, (*conn).cmdCapa},
		"QUIT": {authz | trans, (*conn).cmdQuit},
		// RFC 2595 §4: STLS only in AUTHORIZATION state.
		"STLS": {authz, (*conn).cmdStls},
		"USER": {authz, (*conn).cmdUser},
		"PASS": {authz, (*conn).cmdPass},
		"AUTH": {authz, (*conn).cmdAuth},
		"STAT": {trans, (*conn).cmdStat},
		"LIST": {trans, (*conn).cmdList},
		"UIDL": {trans, (*conn).cmdUidl},
		"RETR": {trans, (*conn).cmdRetr},
		"TOP":  {trans, (*conn).cmdTop},
		"DELE": {trans, (*conn).cmdDele},
		"RSET": {trans, (*conn).cmdRset},
		"NOOP": {trans, (*conn).cmdNoop},
	}
}
