package commands

import (
	"log/slog"

	"github.com/secretlog/secretlog/events"
)

// conflictAttempts bounds automatic retries of a command that lost a race.
const conflictAttempts = 8

// Application is the write side as the API sees it: every handler decorated
// with retries, metrics and logging.
type Application struct {
	CreateSecret         Handler[CreateSecret, Result]
	UpdateSecret         Handler[UpdateSecret, Result]
	UpdateSecretData     Handler[UpdateSecretData, Result]
	RevealSecretData     Handler[RevealSecretData, Revealed]
	CreateUserSecret     Handler[CreateUserSecret, Result]
	UpdateUserSecret     Handler[UpdateUserSecret, Result]
	UpdateUserSecretData Handler[UpdateUserSecretData, Result]
	RevealUserSecretData Handler[RevealUserSecretData, Revealed]
	ReadSecretAsOf       Handler[ReadSecretAsOf, *Secret]
	ReadUserSecretAsOf   Handler[ReadUserSecretAsOf, *UserSecret]

	// The lifecycle, for every kind of resource holding a value (a
	// command's Target.Kind restricts it to one).
	Delete          Handler[Delete, Result]
	Restore         Handler[Restore, Result]
	SetStage        Handler[SetStage, Result]
	DestroyVersions Handler[DestroyVersions, Result]
	SetEnabled      Handler[SetEnabled, Result]
	Rollback        Handler[Rollback, Result]
	Rotate          Handler[Rotate, Result]
	// ListKeys lists the keyring's keys (admins).
	ListKeys Handler[ListKeys, []events.KeyInfo]
	// The scheduler's.
	Purge           Handler[Purge, Result]
	MarkRotationDue Handler[MarkRotationDue, Result]

	CreateTrustedSecret     Handler[CreateTrustedSecret, Result]
	UpdateTrustedSecret     Handler[UpdateTrustedSecret, Result]
	UpdateTrustedSecretData Handler[UpdateTrustedSecretData, Result]
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
func (c RevealSecretData) target() string     { return c.SecretID }
func (CreateUserSecret) target() string       { return "" }
func (c RevealUserSecretData) target() string { return c.UserSecretID }

// decorate applies the cross-cutting concerns. (Commands on one stream are
// grouped and serialised by Deps.Streams.)
func decorate[C command, R any](h HandlerFunc[C, R], log *slog.Logger, m *Metrics, name string) Handler[C, R] {
	var out Handler[C, R] = h
	out = Retrying(out, conflictAttempts)
	out = Measured(out, m, name)
	return Logged(out, log, name)
}

// NewApplication wires the handlers over deps.
func NewApplication(d Deps, log *slog.Logger, m *Metrics) *Application {
	if d.Streams == nil {
		d.Streams = NewStreamQueue()
	}
	return &Application{
		CreateSecret:         decorate(d.HandleCreateSecret, log, m, "createSecret"),
		UpdateSecret:         decorate(d.HandleUpdateSecret, log, m, "updateSecret"),
		UpdateSecretData:     decorate(d.HandleUpdateSecretData, log, m, "updateSecretData"),
		RevealSecretData:     decorate(d.HandleRevealSecretData, log, m, "secretData"),
		CreateUserSecret:     decorate(d.HandleCreateUserSecret, log, m, "createUserSecret"),
		UpdateUserSecret:     decorate(d.HandleUpdateUserSecret, log, m, "updateUserSecret"),
		UpdateUserSecretData: decorate(d.HandleUpdateUserSecretData, log, m, "updateUserSecretData"),
		RevealUserSecretData: decorate(d.HandleRevealUserSecretData, log, m, "userSecretData"),
		ReadSecretAsOf:       decorate(d.HandleReadSecretAsOf, log, m, "secretAsOf"),
		ReadUserSecretAsOf:   decorate(d.HandleReadUserSecretAsOf, log, m, "userSecretAsOf"),
		Delete:               decorate(d.HandleDelete, log, m, "delete"),
		Restore:              decorate(d.HandleRestore, log, m, "restore"),
		SetStage:             decorate(d.HandleSetStage, log, m, "setStage"),
		DestroyVersions:      decorate(d.HandleDestroyVersions, log, m, "destroyVersions"),
		SetEnabled:           decorate(d.HandleSetEnabled, log, m, "setEnabled"),
		Rollback:             decorate(d.HandleRollback, log, m, "rollback"),
		Rotate:               decorate(d.HandleRotate, log, m, "rotate"),
		ListKeys:             decorate(d.HandleListKeys, log, m, "keys"),
		Purge:                decorate(d.HandlePurge, log, m, "purge"),
		MarkRotationDue:      decorate(d.HandleMarkRotationDue, log, m, "markRotationDue"),

		CreateTrustedSecret:     decorate(d.HandleCreateTrustedSecret, log, m, "createTrustedSecret"),
		UpdateTrustedSecret:     decorate(d.HandleUpdateTrustedSecret, log, m, "updateTrustedSecret"),
		UpdateTrustedSecretData: decorate(d.HandleUpdateTrustedSecretData, log, m, "updateTrustedSecretData"),
		RevealTrustedSecretData: decorate(d.HandleRevealTrustedSecretData, log, m, "trustedSecretData"),
		ReadTrustedSecretAsOf:   decorate(d.HandleReadTrustedSecretAsOf, log, m, "trustedSecretAsOf"),
	}
}
