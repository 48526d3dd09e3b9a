package graph

import (
	"context"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/graph/model"
	"github.com/secretlog/secretlog/projections"
)

// target is the Target of a lifecycle mutation on a resource of kind (its
// noun: "secret", "user secret").
func target(ctx context.Context, kind, id string, expected *int) (commands.Target, error) {
	m, err := meta(ctx)
	if err != nil {
		return commands.Target{}, err
	}
	t := commands.Target{Meta: m, ID: id, Kind: kind}
	if expected != nil {
		v := int64(*expected)
		t.ExpectedVersion = &v
	}
	return t, nil
}

func settings(description, kmsKeyID *string, maxVersions *int, auto *bool, period *int) events.Settings {
	s := events.Settings{Description: str(description), KmsKeyID: str(kmsKeyID)}
	if maxVersions != nil {
		s.MaxVersions = *maxVersions
	}
	if auto != nil {
		s.AutoRotation = *auto
	}
	if period != nil {
		s.RotationPeriodHours = *period
	}
	return s
}

func asSecret(res commands.Result, err error) (*projections.Secret, error) {
	if err != nil {
		return nil, err
	}
	return secretAfter(res)
}

func asUserSecret(res commands.Result, err error) (*projections.UserSecret, error) {
	if err != nil {
		return nil, err
	}
	return userSecretAfter(res)
}

func int64p(p *int) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

func revealOptions(version *int, stage *string) commands.RevealOptions {
	return commands.RevealOptions{Version: int64p(version), Stage: stage}
}

func versionPage(p projections.VersionPage, err error) (*model.SecretVersionPage, error) {
	if err != nil {
		return nil, err
	}
	out := &model.SecretVersionPage{Results: make([]*model.SecretVersion, len(p.Results))}
	for i, v := range p.Results {
		stages := v.Stages
		if stages == nil {
			stages = []string{}
		}
		out.Results[i] = &model.SecretVersion{Version: int(v.Version), Stages: stages, CreatedAt: v.CreatedAt,
			CreatedBy: v.CreatedBy, Readable: v.Readable}
		if v.RolledBackFrom != nil {
			n := int(*v.RolledBackFrom)
			out.Results[i].RolledBackFrom = &n
		}
	}
	if p.NextCursor != "" {
		out.NextCursor = &p.NextCursor
	}
	return out, nil
}

func (r *Resolver) remove(ctx context.Context, kind, id string, days *int, force *bool, expected *int) (bool, error) {
	t, err := target(ctx, kind, id, expected)
	if err != nil {
		return false, err
	}
	_, err = r.App.Delete.Handle(ctx, commands.Delete{Target: t, RecoveryWindowDays: days, Force: force != nil && *force})
	return err == nil, err
}

// lifecycle runs a lifecycle command built around its target.
func lifecycle[C any](ctx context.Context, h commands.Handler[C, commands.Result], kind, id string, expected *int,
	build func(commands.Target) C) (commands.Result, error) {
	t, err := target(ctx, kind, id, expected)
	if err != nil {
		return commands.Result{}, err
	}
	return h.Handle(ctx, build(t))
}

func pendingDeletions(list []projections.PendingDeletion, err error) ([]*model.PendingDeletion, error) {
	if err != nil {
		return nil, err
	}
	out := make([]*model.PendingDeletion, len(list))
	for i, p := range list {
		out[i] = &model.PendingDeletion{ResourceID: p.ResourceID, ResourceType: p.ResourceType, Name: p.Name,
			ScheduledDeleteTime: p.DeleteAt, DeletedAt: p.ScheduledAt, DeletedBy: p.ScheduledBy}
	}
	return out, nil
}

func resourceState(s *string) *model.ResourceState {
	if s == nil {
		return nil
	}
	st := model.ResourceState(*s)
	return &st
}

func asTrustedSecret(res commands.Result, err error) (*projections.TrustedSecret, error) {
	if err != nil {
		return nil, err
	}
	return trustedSecretAfter(res)
}
