// Package archive is secretlog's export archive: a versioned file holding
// secrets' metadata and values, encrypted under a key derived from a
// passphrase.
//
// Layout (version 1):
//
//	secretlog-archive v1\n
//	{"kdf":"argon2id","time":3,"memoryKiB":65536,"threads":4,"salt":"…","cipher":"AES-256-GCM","nonce":"…"}\n
//	AES-256-GCM ciphertext of the JSON Payload, with its 16-byte tag
//
// The key is argon2id(passphrase, salt, time, memoryKiB, threads, 32 bytes).
// The associated data of the seal is everything before the ciphertext (the
// magic line and the header line, newlines included), so changing any byte of
// the file, header or ciphertext, makes Open fail. The plaintext exists only
// in memory: Seal writes the ciphertext, Open returns the plaintext.
package archive

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Magic is the first line of every archive, without its newline; the word
// after "v" is the format version.
const (
	magicPrefix   = "secretlog-archive v"
	FormatVersion = 1
	Magic         = "secretlog-archive v1"
)

// Limits of what Open accepts, so a hostile file cannot make it allocate
// without bound.
const (
	MaxHeaderBytes = 4 << 10
	MaxFileBytes   = 1 << 30
	maxMemoryKiB   = 4 << 20 // 4 GiB
	minMemoryKiB   = 8 << 10 // 8 MiB
	maxTime        = 64
	maxThreads     = 64
	saltBytes      = 16
)

// Params are the argon2id parameters.
type Params struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memoryKiB"`
	Threads   uint8  `json:"threads"`
}

// DefaultParams is RFC 9106's second recommended option: 3 passes over
// 64 MiB with 4 lanes.
var DefaultParams = Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

func (p Params) check() error {
	if p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads ||
		p.MemoryKiB < minMemoryKiB || p.MemoryKiB > maxMemoryKiB || p.MemoryKiB < 8*uint32(p.Threads) {
		return fmt.Errorf("argon2id parameters out of range (time 1–%d, memory %d–%d KiB, threads 1–%d)",
			maxTime, minMemoryKiB, maxMemoryKiB, maxThreads)
	}
	return nil
}

// header is the archive's second line.
type header struct {
	KDF       string `json:"kdf"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memoryKiB"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
	Cipher    string `json:"cipher"`
	Nonce     []byte `json:"nonce"`
}

const (
	kdfArgon2id = "argon2id"
	cipherGCM   = "AES-256-GCM"
)

// Errors of Open. Every failure to open an archive wraps one of them.
var (
	// ErrNotArchive: the file does not start with a secretlog archive's magic line.
	ErrNotArchive = errors.New("not a secretlog archive")
	// ErrUnsupported: an archive of a format version or algorithm this build does not read.
	ErrUnsupported = errors.New("unsupported secretlog archive")
	// ErrMalformed: the header cannot be parsed or holds values out of range.
	ErrMalformed = errors.New("malformed secretlog archive")
	// ErrDecrypt: the passphrase is wrong, or the file was changed or damaged
	// (AES-GCM cannot tell them apart).
	ErrDecrypt = errors.New("wrong passphrase, or the archive was changed or damaged")
	// ErrEmptyPassphrase: Seal and Open refuse an empty passphrase.
	ErrEmptyPassphrase = errors.New("empty passphrase")
)

// Seal encrypts plaintext under passphrase with params and writes the
// archive to w. It does not keep or write the plaintext anywhere.
func Seal(w io.Writer, passphrase, plaintext []byte, params Params) error {
	if len(passphrase) == 0 {
		return ErrEmptyPassphrase
	}
	if err := params.check(); err != nil {
		return err
	}
	h := header{KDF: kdfArgon2id, Time: params.Time, MemoryKiB: params.MemoryKiB, Threads: params.Threads,
		Salt: make([]byte, saltBytes), Cipher: cipherGCM, Nonce: make([]byte, 12)}
	if _, err := rand.Read(h.Salt); err != nil {
		return err
	}
	if _, err := rand.Read(h.Nonce); err != nil {
		return err
	}
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	prefix := append([]byte(Magic+"\n"), line...)
	prefix = append(prefix, '\n')
	aead, err := newAEAD(passphrase, h)
	if err != nil {
		return err
	}
	out := aead.Seal(prefix, h.Nonce, plaintext, prefix)
	_, err = w.Write(out)
	return err
}

// Open reads an archive from r and returns its plaintext. Nothing is
// returned unless the whole file authenticates.
func Open(r io.Reader, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxFileBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxFileBytes)
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	first, err := readLine(br, len(Magic)+8)
	if err != nil || !strings.HasPrefix(first, magicPrefix) {
		return nil, ErrNotArchive
	}
	if first != Magic {
		return nil, fmt.Errorf("%w: format %q (this build reads v%d)", ErrUnsupported, strings.TrimPrefix(first, "secretlog-archive "), FormatVersion)
	}
	line, err := readLine(br, MaxHeaderBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	var h header
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: header is not the expected JSON", ErrMalformed)
	}
	if h.KDF != kdfArgon2id || h.Cipher != cipherGCM {
		return nil, fmt.Errorf("%w: kdf %q, cipher %q", ErrUnsupported, h.KDF, h.Cipher)
	}
	if len(h.Salt) != saltBytes || len(h.Nonce) != 12 {
		return nil, fmt.Errorf("%w: salt or nonce of the wrong length", ErrMalformed)
	}
	if err := (Params{Time: h.Time, MemoryKiB: h.MemoryKiB, Threads: h.Threads}).check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	n := len(first) + 1 + len(line) + 1
	aead, err := newAEAD(passphrase, h)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, h.Nonce, raw[n:], raw[:n])
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// readLine reads one line of at most max bytes, without its newline.
func readLine(br *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", errors.New("unexpected end of file")
		}
		if c == '\n' {
			return string(b), nil
		}
		if len(b) == max {
			return "", errors.New("line too long")
		}
		b = append(b, c)
	}
}

func newAEAD(passphrase []byte, h header) (cipher.AEAD, error) {
	key := argon2.IDKey(passphrase, h.Salt, h.Time, h.MemoryKiB, h.Threads, 32)
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
