package keyfile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
)

// AESGCM returns AES-256-GCM under the key in the file at path, read or
// created (mode 0600) as [LoadOrCreate] does; "" means a random key that
// ends with the process.
func AESGCM(path string) (cipher.AEAD, error) {
	var key []byte
	if path == "" {
		key = make([]byte, 32)
		rand.Read(key)
	} else {
		var err error
		if key, err = LoadOrCreate(path, 32); err != nil {
			return nil, err
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
