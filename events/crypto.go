package events

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
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

// Keyring holds named key-encryption keys, each in one or more versions.
// A data key is wrapped by the newest version of one name: the name a
// resource chose (kmsKeyId), or the primary's (the first entry's name).
// Older versions still unwrap the data keys they wrapped, until Rewrap
// moves them to the newest version of their name. Rotation never rewrites
// the log.
//
// A wrap records the key id of the version that made it: the bare name for
// version 1 (as keyrings without versions always wrote), name@N otherwise.
type Keyring struct {
	primary  string
	keys     map[string][]byte // by key id (kekID)
	versions map[string][]int  // name -> versions, ascending
}

// KeyInfo describes one named key of a keyring: never its material.
type KeyInfo struct {
	// Name is what kmsKeyId names.
	Name string
	// Versions the keyring holds, ascending; the last wraps new data keys.
	Versions []int
	// Primary: data keys of resources that name no key are wrapped by it.
	Primary bool
}

// Current is the version that wraps new data keys.
func (k KeyInfo) Current() int { return k.Versions[len(k.Versions)-1] }

// keyName is what a key may be called: kmsKeyId carries it through the API.
var keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$`)

// kekID is the id a wrap records for version v of name.
func kekID(name string, v int) string {
	if v == 1 {
		return name
	}
	return name + "@" + strconv.Itoa(v)
}

// parseKeyID splits "name" (version 1) or "name@N".
func parseKeyID(id string) (string, int, error) {
	name, ver, versioned := strings.Cut(id, "@")
	if !keyNamePattern.MatchString(name) {
		return "", 0, errors.New("keyring: each key must be written id:base64key or id@version:base64key " +
			"(id: letters, digits, '_', '.', '/', '-', at most 128, starting with a letter or digit)")
	}
	if !versioned {
		return name, 1, nil
	}
	v, err := strconv.Atoi(ver)
	if err != nil || v < 1 || v > 1_000_000 || strconv.Itoa(v) != ver {
		return "", 0, fmt.Errorf("keyring: key %q has a bad version (a positive number without leading zeros)", name)
	}
	return name, v, nil
}

// ParseKeyring reads "id[@version]:base64key[,...]": a bare id is version 1
// of that name; the first entry's name is the primary. Each key is 32 bytes
// (standard or URL base64). Adding name@N+1 rotates the named key: new data
// keys of the resources that name it are wrapped by the new version, the
// older ones keep unwrapping until Rewrap.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{keys: map[string][]byte{}, versions: map[string][]int{}}
	for _, part := range strings.Split(strings.TrimSpace(spec), ",") {
		part = strings.TrimSpace(part)
		id, enc, ok := strings.Cut(part, ":")
		if !ok || id == "" {
			return nil, errors.New("keyring: each key must be written id:base64key or id@version:base64key")
		}
		name, v, err := parseKeyID(id)
		if err != nil {
			return nil, err
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
		kid := kekID(name, v)
		if _, dup := k.keys[kid]; dup {
			return nil, fmt.Errorf("keyring: key id %q appears twice", kid)
		}
		k.keys[kid] = key
		k.versions[name] = append(k.versions[name], v)
		if k.primary == "" {
			k.primary = name
		}
	}
	for _, vs := range k.versions {
		slices.Sort(vs)
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

// Primary is the name of the key that wraps the data keys of resources that
// name none.
func (k *Keyring) Primary() string { return k.primary }

// current is the key id of name's newest version ("" when the keyring has no such name).
func (k *Keyring) current(name string) string {
	vs := k.versions[name]
	if len(vs) == 0 {
		return ""
	}
	return kekID(name, vs[len(vs)-1])
}

// CurrentID is the key id (name or name@N) that wraps new data keys of
// name; "" when the keyring has no such name.
func (k *Keyring) CurrentID(name string) string { return k.current(name) }

// Keys lists the named keys, primary first, then by name.
func (k *Keyring) Keys() []KeyInfo {
	out := make([]KeyInfo, 0, len(k.versions))
	for name, vs := range k.versions {
		out = append(out, KeyInfo{Name: name, Versions: slices.Clone(vs), Primary: name == k.primary})
	}
	slices.SortFunc(out, func(a, b KeyInfo) int {
		if a.Primary != b.Primary {
			if a.Primary {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// wrapFor wraps dataKey with the newest version of the key named name.
func (k *Keyring) wrapFor(name, stream string, dataKey []byte) (string, []byte, error) {
	id := k.current(name)
	if id == "" {
		return "", nil, fmt.Errorf("keyring: no key named %q", name)
	}
	return k.wrapWith(id, stream, dataKey)
}

// wrapWith wraps dataKey with the key-encryption key id (name or name@N).
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

// Has reports whether the keyring holds a key named name (any version).
func (k *Keyring) Has(name string) bool { return len(k.versions[name]) > 0 }

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

// MACKey derives a key for purpose from the newest version of the primary
// (HKDF-SHA256), with the id of the version it came from: a MAC made with it
// can only be recomputed by whoever holds the keyring. Store the id with the
// MAC and recompute with MACKeyFor(id, purpose).
func (k *Keyring) MACKey(purpose string) (string, []byte, error) {
	id := k.current(k.primary)
	key, err := k.MACKeyFor(id, purpose)
	return id, key, err
}

// MACKeyFor derives purpose's key from the key id (name or name@N); an
// error when the keyring no longer holds it.
func (k *Keyring) MACKeyFor(id, purpose string) ([]byte, error) {
	kek, ok := k.keys[id]
	if !ok {
		return nil, fmt.Errorf("keyring: no key %q", id)
	}
	return hkdf.Key(sha256.New, kek, nil, "secretlog/"+purpose, 32)
}

// KeyStore keeps one wrapped data key per stream in the data_keys table.
// Unwrapped keys are cached in memory for a short, bounded time; destroying a
// key evicts it here at once and, through KeyDestroyedChannel, on every
// other server that runs Follow.
type KeyStore struct {
	pool    *pgxpool.Pool
	keyring *Keyring
	cache   *expirable.LRU[string, []byte]
	// ReplaceOrphans lets a new key replace a live key of the same name. On
	// a remote log a key is stored before the event sealed with it is
	// appended; an append that failed (or a writer that died in between)
	// leaves a key no event uses, under the name of the stream's next
	// version. The writer that next holds the stream's lock (and so knows
	// no event of that version exists) replaces it.
	ReplaceOrphans bool
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

// Keyring is the keyring the store wraps with.
func (ks *KeyStore) Keyring() *Keyring { return ks.keyring }

// New makes a new random data key named name, wrapped by the newest version
// of the keyring key kmsKeyID ("": the primary, whichever it is when the key
// is rewrapped). store queues storing it, with the name it follows, on the
// batch of the transaction that appends the event sealed with it.
func (ks *KeyStore) New(name, kmsKeyID string) (dk []byte, store func(*pgx.Batch), err error) {
	dk = make([]byte, 32)
	if _, err := rand.Read(dk); err != nil {
		return nil, nil, err
	}
	follow := kmsKeyID
	if follow == "" {
		follow = ks.keyring.primary
	}
	kekID, wrapped, err := ks.keyring.wrapFor(follow, name, dk)
	if err != nil {
		return nil, nil, err
	}
	var named *string // NULL: follows the primary
	if kmsKeyID != "" {
		named = &kmsKeyID
	}
	if ks.ReplaceOrphans {
		return dk, func(b *pgx.Batch) {
			b.Queue(`INSERT INTO data_keys AS k (stream_id, kek_id, wrapped_key, kms_key_id) VALUES ($1, $2, $3, $4)
				ON CONFLICT (stream_id) DO UPDATE SET kek_id = excluded.kek_id, wrapped_key = excluded.wrapped_key,
					kms_key_id = excluded.kms_key_id WHERE k.destroyed_at IS NULL`, name, kekID, wrapped, named)
		}, nil
	}
	return dk, func(b *pgx.Batch) {
		b.Queue(`INSERT INTO data_keys (stream_id, kek_id, wrapped_key, kms_key_id) VALUES ($1, $2, $3, $4)`, name, kekID, wrapped, named)
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

// Rewrap re-wraps every live data key not wrapped by the newest version of
// the key it follows (the key its resource named, or the primary), so that
// retired versions and keys can be removed from the keyring. It returns how
// many keys moved. A data key naming a key the keyring lacks stops it with
// an error (nothing else is lost: the keys moved so far stay moved).
func (ks *KeyStore) Rewrap(ctx context.Context) (int, error) {
	var names, targets []string
	for name := range ks.keyring.versions {
		names, targets = append(names, name), append(targets, ks.keyring.current(name))
	}
	primary := ks.keyring.current(ks.keyring.primary)
	moved := 0
	for {
		// A row is due when its wrap is not the newest version of its name
		// (a name the keyring lacks is due too, and reported below).
		rows, err := ks.pool.Query(ctx, `SELECT stream_id, kek_id, wrapped_key, kms_key_id FROM data_keys
			WHERE destroyed_at IS NULL AND kek_id IS DISTINCT FROM CASE WHEN kms_key_id IS NULL THEN $3
				ELSE (SELECT m.target FROM unnest($1::text[], $2::text[]) AS m(name, target) WHERE m.name = kms_key_id) END
			ORDER BY stream_id LIMIT 500`, names, targets, primary)
		if err != nil {
			return moved, err
		}
		type row struct {
			stream, kek string
			wrapped     []byte
			named       *string
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.stream, &r.kek, &r.wrapped, &r.named); err != nil {
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
			follow := ks.keyring.primary
			if r.named != nil {
				follow = *r.named
			}
			if !ks.keyring.Has(follow) {
				return moved, fmt.Errorf("keyring: the data key of %s follows key %q, which the keyring lacks", r.stream, follow)
			}
			dk, err := ks.keyring.unwrap(r.stream, r.kek, r.wrapped)
			if err != nil {
				return moved, err
			}
			kekID, wrapped, err := ks.keyring.wrapFor(follow, r.stream, dk)
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
