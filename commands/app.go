package commands

import (
	"log/slog"
)

// conflictAttempts bounds automatic retries of a command that lost a race.
const conflictAttempts = 8

// Application is the write side as the API sees it: every handler decorated
// with retries, logging and metrics.
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
}

// metaCarrier is every command: they all embed Meta.
type metaCarrier interface{ meta() Meta }

func (m Meta) meta() Meta { return m }

func resultID[C any](_ C, r Result) string { return r.ID }

func wrap[C metaCarrier, R any](h HandlerFunc[C, R], log *slog.Logger, m *Metrics, name string, idOf func(C, R) string) Handler[C, R] {
	var out Handler[C, R] = Retrying[C, R](h, conflictAttempts)
	out = Measured(out, m, name)
	return Logged(out, log, name, func(c C) Meta { return c.meta() }, idOf)
}

// NewApplication wires the handlers over deps.
func NewApplication(d Deps, log *slog.Logger, m *Metrics) *Application {
	return &Application{
		CreateSecret:         wrap(d.HandleCreateSecret, log, m, "createSecret", resultID[CreateSecret]),
		UpdateSecret:         wrap(d.HandleUpdateSecret, log, m, "updateSecret", func(c UpdateSecret, _ Result) string { return c.SecretID }),
		UpdateSecretData:     wrap(d.HandleUpdateSecretData, log, m, "updateSecretData", func(c UpdateSecretData, _ Result) string { return c.SecretID }),
		DeleteSecret:         wrap(d.HandleDeleteSecret, log, m, "deleteSecret", func(c DeleteSecret, _ Result) string { return c.SecretID }),
		RevealSecretData:     wrap(d.HandleRevealSecretData, log, m, "secretData", func(c RevealSecretData, _ Revealed) string { return c.SecretID }),
		CreateUserSecret:     wrap(d.HandleCreateUserSecret, log, m, "createUserSecret", resultID[CreateUserSecret]),
		UpdateUserSecret:     wrap(d.HandleUpdateUserSecret, log, m, "updateUserSecret", func(c UpdateUserSecret, _ Result) string { return c.UserSecretID }),
		UpdateUserSecretData: wrap(d.HandleUpdateUserSecretData, log, m, "updateUserSecretData", func(c UpdateUserSecretData, _ Result) string { return c.UserSecretID }),
		DeleteUserSecret:     wrap(d.HandleDeleteUserSecret, log, m, "deleteUserSecret", func(c DeleteUserSecret, _ Result) string { return c.UserSecretID }),
		RevealUserSecretData: wrap(d.HandleRevealUserSecretData, log, m, "userSecretData", func(c RevealUserSecretData, _ Revealed) string { return c.UserSecretID }),
	}
}
