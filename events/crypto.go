package events

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrKeyDestroyed means the stream's data key was destroyed (crypto-shredded):
// its values can no longer be decrypted.
var ErrKeyDestroyed = errors.New("events: data key destroyed")

// Sealed is a secret value encrypted with its stream's data key (AES-256-GCM).
// The associated data binds it to the stream and the version of the event
// carrying it, so a ciphertext copied elsewhere in the log fails to open.
type Sealed struct {
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ct"`
}

func associatedData(stream string, version int64) []byte {
	return []byte("secretlog/v1\x00" + stream + "\x00" + strconv.FormatInt(version, 10))
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("events: AES-256 key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext with the data key for (stream, version).
func Seal(dataKey []byte, stream string, version int64, plaintext []byte) (Sealed, error) {
	gcm, err := newGCM(dataKey)
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, err
	}
	return Sealed{Nonce: nonce, Ciphertext: gcm.Seal(nil, nonce, plaintext, associatedData(stream, version))}, nil
}

// Open decrypts a Sealed value of (stream, version).
func Open(dataKey []byte, stream string, version int64, s Sealed) ([]byte, error) {
	gcm, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != gcm.NonceSize() {
		return nil, errors.New("events: sealed value has a bad nonce")
	}
	pt, err := gcm.Open(nil, s.Nonce, s.Ciphertext, associatedData(stream, version))
	if err != nil {
		return nil, errors.New("events: sealed value failed authentication")
	}
	return pt, nil
}

// Keyring holds key-encryption keys by id. The primary wraps new data keys;
// the others still unwrap the data keys they wrapped, until Rewrap moves
// them to the primary. Rotation never rewrites the log.
type Keyring struct {
	primary string
	keys    map[string][]byte
}

// ParseKeyring reads "id:base64key[,id:base64key...]"; the first key is the primary.
// Each key is 32 bytes (standard or URL base64).
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{keys: map[string][]byte{}}
	for _, part := range strings.Split(strings.TrimSpace(spec), ",") {
		part = strings.TrimSpace(part)
		id, enc, ok := strings.Cut(part, ":")
		if !ok || id == "" {
			return nil, errors.New("keyring: each key must be written id:base64key")
		}
		key, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			if key, err = base64.URLEncoding.DecodeString(enc); err != nil {
				return nil, fmt.Errorf("keyring: key %q is not base64", id)
			}
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("keyring: key %q must be 32 bytes, got %d", id, len(key))
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("keyring: key id %q appears twice", id)
		}
		k.keys[id] = key
		if k.primary == "" {
			k.primary = id
		}
	}
	return k, nil
}

// NewKeySpec makes a fresh keyring spec with one random key.
func NewKeySpec(id string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// Primary is the id of the key that wraps new data keys.
func (k *Keyring) Primary() string { return k.primary }

func (k *Keyring) wrap(stream string, dataKey []byte) (string, []byte, error) {
	return k.wrapWith(k.primary, stream, dataKey)
}

// wrapWith wraps dataKey with the key-encryption key id.
func (k *Keyring) wrapWith(id, stream string, dataKey []byte) (string, []byte, error) {
	kek, ok := k.keys[id]
	if !ok {
		return "", nil, fmt.Errorf("keyring: no key %q", id)
	}
	s, err := Seal(kek, "datakey:"+stream, 0, dataKey)
	if err != nil {
		return "", nil, err
	}
	return id, append(s.Nonce, s.Ciphertext...), nil
}

// Has reports whether the keyring holds a key with this id.
func (k *Keyring) Has(id string) bool { _, ok := k.keys[id]; return ok }

func (k *Keyring) unwrap(stream, kekID string, wrapped []byte) ([]byte, error) {
	kek, ok := k.keys[kekID]
	if !ok {
		return nil, fmt.Errorf("keyring: no key %q to unwrap the data key of %s (was it removed before rewrap?)", kekID, stream)
	}
	if len(wrapped) < 12 {
		return nil, errors.New("keyring: wrapped key too short")
	}
	return Open(kek, "datakey:"+stream, 0, Sealed{Nonce: wrapped[:12], Ciphertext: wrapped[12:]})
}

// KeyStore keeps one wrapped data key per stream in the data_keys table.
// Unwrapped keys are cached in memory for a short, bounded time; destroying a
// key evicts it here at once and, through KeyDestroyedChannel, on every
// other server that runs Follow.
type KeyStore struct {
	pool    *pgxpool.Pool
	keyring *Keyring
	cache   *expirable.LRU[string, []byte]
}

// KeyCacheTTL and KeyCacheSize bound how long and how many unwrapped data
// keys a server keeps in memory.
const (
	KeyCacheTTL  = 30 * time.Second
	KeyCacheSize = 10000
)

// KeyDestroyedChannel is notified (on commit) with the stream whose data key
// was destroyed.
const KeyDestroyedChannel = "secretlog_key_destroyed"

// NewKeyStore stores data keys in pool's data_keys table, wrapped by keyring.
func NewKeyStore(pool *pgxpool.Pool, keyring *Keyring) *KeyStore {
	return &KeyStore{pool: pool, keyring: keyring, cache: expirable.NewLRU[string, []byte](KeyCacheSize, nil, KeyCacheTTL)}
}

// Follow evicts keys that other servers destroy until ctx ends. When the
// notification connection is lost the cache is emptied and followed again.
func (ks *KeyStore) Follow(ctx context.Context) {
	for ctx.Err() == nil {
		notes, stop, err := Listen(ctx, ks.pool, KeyDestroyedChannel, 1024)
		if err != nil {
			ks.cache.Purge()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		ks.cache.Purge() // anything destroyed while nobody listened
		for open := true; open; {
			select {
			case <-ctx.Done():
				open = false
			case stream, ok := <-notes:
				if !ok {
					open = false
					break
				}
				ks.Forget(stream)
			}
		}
		stop()
	}
}

// HasKey reports whether kmsKeyID names a key of the keyring.
func (ks *KeyStore) HasKey(kmsKeyID string) bool { return ks.keyring.Has(kmsKeyID) }

// New makes a new random data key named name, wrapped by the keyring key
// kmsKeyID ("": the primary). store queues storing it on the batch of the
// transaction that appends the event sealed with it.
func (ks *KeyStore) New(name, kmsKeyID string) (dk []byte, store func(*pgx.Batch), err error) {
	dk = make([]byte, 32)
	if _, err := rand.Read(dk); err != nil {
		return nil, nil, err
	}
	if kmsKeyID == "" {
		kmsKeyID = ks.keyring.primary
	}
	kekID, wrapped, err := ks.keyring.wrapWith(kmsKeyID, name, dk)
	if err != nil {
		return nil, nil, err
	}
	return dk, func(b *pgx.Batch) {
		b.Queue(`INSERT INTO data_keys (stream_id, kek_id, wrapped_key) VALUES ($1, $2, $3)`, name, kekID, wrapped)
	}, nil
}

// Create makes a new random data key for stream and stores it wrapped, on q.
func (ks *KeyStore) Create(ctx context.Context, q Querier, stream string) ([]byte, error) {
	dk, store, err := ks.New(stream, "")
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	store(b)
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("events: store data key: %w", err)
	}
	return dk, nil
}

// Get returns the stream's data key, or ErrKeyDestroyed.
func (ks *KeyStore) Get(ctx context.Context, stream string) ([]byte, error) {
	if dk, ok := ks.cache.Get(stream); ok {
		return dk, nil
	}
	var kekID *string
	var wrapped []byte
	err := ks.pool.QueryRow(ctx, `SELECT kek_id, wrapped_key FROM data_keys WHERE stream_id = $1`, stream).Scan(&kekID, &wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("events: no data key for %s", stream)
	}
	if err != nil {
		return nil, err
	}
	if wrapped == nil {
		return nil, ErrKeyDestroyed
	}
	dk, err := ks.keyring.unwrap(stream, *kekID, wrapped)
	if err != nil {
		return nil, err
	}
	ks.cache.Add(stream, dk)
	return dk, nil
}

// Destroy erases the stream's wrapped data key for good (crypto-shredding)
// on q, which is the transaction appending the deletion: both commit or
// neither does. Destroying an already destroyed key is not an error.
func (ks *KeyStore) Destroy(ctx context.Context, q Querier, stream string) error {
	b := &pgx.Batch{}
	ks.QueueDestroy(b, stream)
	return q.SendBatch(ctx, b).Close()
}

// QueueDestroy queues Destroy on the batch of the transaction appending the
// deletion.
func (ks *KeyStore) QueueDestroy(b *pgx.Batch, stream string) {
	ks.cache.Remove(stream)
	b.Queue(`WITH gone AS (UPDATE data_keys SET kek_id = NULL, wrapped_key = NULL, destroyed_at = now()
		WHERE stream_id = $1 AND destroyed_at IS NULL) SELECT pg_notify($2, $1)`, stream, KeyDestroyedChannel)
}

// QueueDestroyAll queues destroying every key named prefix or prefix/…
// (all the keys of one resource's versions).
func (ks *KeyStore) QueueDestroyAll(b *pgx.Batch, prefix string) {
	ks.Forget(prefix)
	b.Queue(`WITH gone AS (UPDATE data_keys SET kek_id = NULL, wrapped_key = NULL, destroyed_at = now()
		WHERE (stream_id = $1 OR stream_id LIKE $1 || '/%') AND destroyed_at IS NULL) SELECT pg_notify($2, $1)`,
		prefix, KeyDestroyedChannel)
}

// Forget drops the key named name, and every key named name/…, from this
// server's cache (after a destroy committed, so that a read racing the
// commit cannot re-cache it).
func (ks *KeyStore) Forget(name string) {
	ks.cache.Remove(name)
	for _, k := range ks.cache.Keys() {
		if strings.HasPrefix(k, name+"/") {
			ks.cache.Remove(k)
		}
	}
}

// Rewrap re-wraps every live data key not wrapped by the primary key, so that
// retired key-encryption keys can be removed from the keyring. It returns how
// many keys moved.
func (ks *KeyStore) Rewrap(ctx context.Context) (int, error) {
	moved := 0
	for {
		rows, err := ks.pool.Query(ctx, `SELECT stream_id, kek_id, wrapped_key FROM data_keys
			WHERE destroyed_at IS NULL AND kek_id <> $1 LIMIT 500`, ks.keyring.primary)
		if err != nil {
			return moved, err
		}
		type row struct {
			stream, kek string
			wrapped     []byte
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.stream, &r.kek, &r.wrapped); err != nil {
				rows.Close()
				return moved, err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return moved, err
		}
		if len(batch) == 0 {
			return moved, nil
		}
		for _, r := range batch {
			dk, err := ks.keyring.unwrap(r.stream, r.kek, r.wrapped)
			if err != nil {
				return moved, err
			}
			kekID, wrapped, err := ks.keyring.wrap(r.stream, dk)
			if err != nil {
				return moved, err
			}
			// Compare-and-set: a concurrent Destroy wins.
			tag, err := ks.pool.Exec(ctx, `UPDATE data_keys SET kek_id = $2, wrapped_key = $3, rotated_at = now()
				WHERE stream_id = $1 AND kek_id = $4 AND destroyed_at IS NULL`, r.stream, kekID, wrapped, r.kek)
			if err != nil {
				return moved, err
			}
			moved += int(tag.RowsAffected())
		}
	}
}
