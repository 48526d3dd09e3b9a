package commands

import (
	"log/slog"
)

// conflictAttempts bounds automatic retries of a command that lost a race.
const conflictAttempts = 8

// Application is the write side as the API sees it: every handler decorated
// with per-stream serialisation, retries, metrics and logging.
type Application struct {
	CreateSecret         Handler[CreateSecret, Result]
	UpdateSecret         Handler[UpdateSecret, Result]
	UpdateSecretData     Handler[UpdateSecretData, Result]
	DeleteSecret         Handler[DeleteSecret, Result]
	RevealSecretData     Handler[RevealSecretData, Revealed]
	CreateUserSecret     Handler[CreateUserSecret, Result]
	UpdateUserSecret     Handler[UpdateUserSecret, Result]
	UpdateUserSecretData Handler[UpdateUserSecretData, Result]
	DeleteUserSecret     Handler[DeleteUserSecret, Result]
	RevealUserSecretData Handler[RevealUserSecretData, Revealed]
	ReadSecretAsOf       Handler[ReadSecretAsOf, *Secret]
	ReadUserSecretAsOf   Handler[ReadUserSecretAsOf, *UserSecret]

	CreateTrustedSecret     Handler[CreateTrustedSecret, Result]
	UpdateTrustedSecret     Handler[UpdateTrustedSecret, Result]
	UpdateTrustedSecretData Handler[UpdateTrustedSecretData, Result]
	DeleteTrustedSecret     Handler[DeleteTrustedSecret, Result]
	RevealTrustedSecretData Handler[RevealTrustedSecretData, Revealed]
	ReadTrustedSecretAsOf   Handler[ReadTrustedSecretAsOf, *TrustedSecret]
}

// command is what every command and query struct is: it carries Meta and
// names the stream it targets ("" for a create, whose id is new).
type command interface {
	meta() Meta
	target() string
}

func (m Meta) meta() Meta { return m }

func (CreateSecret) target() string           { return "" }
func (c UpdateSecret) target() string         { return c.SecretID }
func (c UpdateSecretData) target() string     { return c.SecretID }
func (c DeleteSecret) target() string         { return c.SecretID }
func (c RevealSecretData) target() string     { return c.SecretID }
func (CreateUserSecret) target() string       { return "" }
func (c UpdateUserSecret) target() string     { return c.UserSecretID }
func (c UpdateUserSecretData) target() string { return c.UserSecretID }
func (c DeleteUserSecret) target() string     { return c.UserSecretID }
func (c RevealUserSecretData) target() string { return c.UserSecretID }

// decorate applies the cross-cutting concerns; locks is nil for handlers
// that need no per-stream serialisation (creates and reads).
func decorate[C command, R any](h HandlerFunc[C, R], locks *streamLocks, log *slog.Logger, m *Metrics, name string) Handler[C, R] {
	var out Handler[C, R] = h
	if locks != nil {
		out = Serialized(out, locks)
	}
	out = Retrying(out, conflictAttempts)
	out = Measured(out, m, name)
	return Logged(out, log, name)
}

// NewApplication wires the handlers over deps.
func NewApplication(d Deps, log *slog.Logger, m *Metrics) *Application {
	locks := &streamLocks{}
	return &Application{
		CreateSecret:         decorate(d.HandleCreateSecret, nil, log, m, "createSecret"),
		UpdateSecret:         decorate(d.HandleUpdateSecret, locks, log, m, "updateSecret"),
		UpdateSecretData:     decorate(d.HandleUpdateSecretData, locks, log, m, "updateSecretData"),
		DeleteSecret:         decorate(d.HandleDeleteSecret, locks, log, m, "deleteSecret"),
		RevealSecretData:     decorate(d.HandleRevealSecretData, nil, log, m, "secretData"),
		CreateUserSecret:     decorate(d.HandleCreateUserSecret, nil, log, m, "createUserSecret"),
		UpdateUserSecret:     decorate(d.HandleUpdateUserSecret, locks, log, m, "updateUserSecret"),
		UpdateUserSecretData: decorate(d.HandleUpdateUserSecretData, locks, log, m, "updateUserSecretData"),
		DeleteUserSecret:     decorate(d.HandleDeleteUserSecret, locks, log, m, "deleteUserSecret"),
		RevealUserSecretData: decorate(d.HandleRevealUserSecretData, nil, log, m, "userSecretData"),
		ReadSecretAsOf:       decorate(d.HandleReadSecretAsOf, nil, log, m, "secretAsOf"),
		ReadUserSecretAsOf:   decorate(d.HandleReadUserSecretAsOf, nil, log, m, "userSecretAsOf"),

		CreateTrustedSecret:     decorate(d.HandleCreateTrustedSecret, nil, log, m, "createTrustedSecret"),
		UpdateTrustedSecret:     decorate(d.HandleUpdateTrustedSecret, locks, log, m, "updateTrustedSecret"),
		UpdateTrustedSecretData: decorate(d.HandleUpdateTrustedSecretData, locks, log, m, "updateTrustedSecretData"),
		DeleteTrustedSecret:     decorate(d.HandleDeleteTrustedSecret, locks, log, m, "deleteTrustedSecret"),
		RevealTrustedSecretData: decorate(d.HandleRevealTrustedSecretData, nil, log, m, "trustedSecretData"),
		ReadTrustedSecretAsOf:   decorate(d.HandleReadTrustedSecretAsOf, nil, log, m, "trustedSecretAsOf"),
	}
}
