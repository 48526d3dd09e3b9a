package schemas

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// generateKeyword marks a string property that rotation generates:
// "x-generate": {"length": 32, "charset": "alphanumeric"}.
const generateKeyword = "x-generate"

// Character sets a generated value is drawn from.
var charsets = map[string]string{
	"alphanumeric":         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	"alphanumeric-symbols": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%+-.:=@^_~",
	"hex":                  "0123456789abcdef",
}

// Policy is how a generated value is made: Length characters drawn
// uniformly and independently from Charset with crypto/rand.
type Policy struct {
	Length  int    `json:"length"`
	Charset string `json:"charset"`
}

// Generate returns a new random value.
func (p Policy) Generate() (string, error) {
	set := charsets[p.Charset]
	var b strings.Builder
	n := big.NewInt(int64(len(set)))
	for range p.Length {
		i, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b.WriteByte(set[i.Int64()])
	}
	return b.String(), nil
}

// Alphabet is the characters a value may hold.
func (p Policy) Alphabet() string { return charsets[p.Charset] }

func generatedFields(schema map[string]any) (map[string]Policy, error) {
	props, _ := schema["properties"].(map[string]any)
	var out map[string]Policy
	for name, raw := range props {
		prop, _ := raw.(map[string]any)
		g, ok := prop[generateKeyword].(map[string]any)
		if !ok {
			continue
		}
		var length float64
		switch l := g["length"].(type) {
		case float64:
			length = l
		case json.Number:
			length, _ = l.Float64()
		}
		charset, _ := g["charset"].(string)
		if length < 16 || length > 256 || charsets[charset] == "" {
			return nil, fmt.Errorf("property %q: %s needs a length of 16 to 256 and a charset (%s)", name, generateKeyword, "alphanumeric, alphanumeric-symbols, hex")
		}
		if out == nil {
			out = map[string]Policy{}
		}
		out[name] = Policy{Length: int(length), Charset: charset}
	}
	return out, nil
}
