package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ReadSecret reads a secret named in the configuration: the value of the
// environment variable env when env is set, else the contents of file
// (surrounding white space removed).
func ReadSecret(env, file string) (string, error) {
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", errors.New("no value_env or value_file given")
}
