package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/encryptiond/encryptiond/atlas"
)

// fileSuffix turns a credential's variable into the one naming a file that
// holds it (the _FILE convention of container images): with
// MONGODB_ATLAS_PRIVATE_API_KEY_FILE=/secrets/private-key the key is that
// file's content, without one trailing newline. The daemon reads the file
// again whenever it authenticates to Atlas anew, so that a mounted
// Kubernetes Secret can rotate without a restart.
const fileSuffix = "_FILE"

// The _FILE forms of the credential variables.
const (
	EnvPublicKeyFile    = EnvPublicKey + fileSuffix
	EnvPrivateKeyFile   = EnvPrivateKey + fileSuffix
	EnvClientIDFile     = EnvClientID + fileSuffix
	EnvClientSecretFile = EnvClientSecret + fileSuffix
)

// maxCredentialFileSize bounds a credential file: a key or secret is under
// a hundred bytes.
const maxCredentialFileSize = 64 << 10

// Credentials authenticate the daemon to Atlas: either a programmatic API
// key (digest) or a service account (OAuth 2.0 client credentials). Its
// String, GoString and LogValue never show a secret.
type Credentials struct {
	PublicKey, PrivateKey  string
	ClientID, ClientSecret string
	// PublicKeyFile, PrivateKeyFile, ClientIDFile and ClientSecretFile are
	// the files the values above were read from (the _FILE variables), or
	// "" for a value from the environment. The daemon reads a file again
	// each time it authenticates to Atlas anew (a digest challenge, a
	// service-account token fetch) and uses what it finds.
	PublicKeyFile, PrivateKeyFile, ClientIDFile, ClientSecretFile string
}

// Mode names the kind of credentials: "digest", "service-account" or "none".
func (c Credentials) Mode() string {
	switch {
	case c.PublicKey != "":
		return "digest"
	case c.ClientID != "":
		return "service-account"
	}
	return "none"
}

// String describes c without its secrets.
func (c Credentials) String() string { return "credentials(" + c.Mode() + ")" }

// GoString describes c without its secrets, for %#v.
func (c Credentials) GoString() string { return c.String() }

// LogValue describes c without its secrets, for slog.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON describes c without its secrets, for a Config marshalled
// whole (slog's JSON handler does that with a struct).
func (c Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// credentialsFromEnv reads exactly one complete pair of credentials, each
// value from its variable or from the file its _FILE variable names.
func credentialsFromEnv(getenv func(string) string) (Credentials, error) {
	var c Credentials
	for _, v := range []struct {
		name        string
		value, file *string
	}{
		{EnvPublicKey, &c.PublicKey, &c.PublicKeyFile},
		{EnvPrivateKey, &c.PrivateKey, &c.PrivateKeyFile},
		{EnvClientID, &c.ClientID, &c.ClientIDFile},
		{EnvClientSecret, &c.ClientSecret, &c.ClientSecretFile},
	} {
		value, path := getenv(v.name), getenv(v.name+fileSuffix)
		switch {
		case value != "" && path != "":
			return Credentials{}, fmt.Errorf("Atlas credentials: %s and %s are both set: set one of them", v.name, v.name+fileSuffix)
		case path != "":
			var err error
			if value, err = readCredentialFile(path); err != nil {
				return Credentials{}, fmt.Errorf("Atlas credentials: %s: %w", v.name+fileSuffix, err)
			}
			*v.file = path
		}
		*v.value = value
	}
	digest := c.PublicKey != "" || c.PrivateKey != ""
	service := c.ClientID != "" || c.ClientSecret != ""
	switch {
	case digest && service:
		return Credentials{}, fmt.Errorf("Atlas credentials: both an API key (%s, %s) and a service account (%s, %s) are set: set exactly one pair",
			EnvPublicKey, EnvPrivateKey, EnvClientID, EnvClientSecret)
	case digest && (c.PublicKey == "" || c.PrivateKey == ""):
		return Credentials{}, fmt.Errorf("Atlas credentials: %s and %s must be set together (each directly or through its %s variable); %s is missing",
			EnvPublicKey, EnvPrivateKey, fileSuffix, missing(c.PublicKey, EnvPublicKey, EnvPrivateKey))
	case service && (c.ClientID == "" || c.ClientSecret == ""):
		return Credentials{}, fmt.Errorf("Atlas credentials: %s and %s must be set together (each directly or through its %s variable); %s is missing",
			EnvClientID, EnvClientSecret, fileSuffix, missing(c.ClientID, EnvClientID, EnvClientSecret))
	case !digest && !service:
		return Credentials{}, fmt.Errorf("no Atlas credentials: set %s and %s (API key), or %s and %s (service account), each directly or as a file named by its %s variable; or run with -dev to use the built-in emulator",
			EnvPublicKey, EnvPrivateKey, EnvClientID, EnvClientSecret, fileSuffix)
	}
	return c, nil
}

// missing names the absent half of a pair whose first value is first.
func missing(first, firstName, secondName string) string {
	if first == "" {
		return firstName
	}
	return secondName
}

// readCredentialFile returns the content of a credential file without one
// trailing newline ("\n" or "\r\n"). An empty value is an error. Errors
// name the file, never its content.
func readCredentialFile(path string) (string, error) {
	data, err := readFile(path, maxCredentialFileSize)
	if err != nil {
		return "", err
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// atlasAuth returns the Atlas client's auth option for creds. A pair with
// a value from a file gets a source that reads the file again at each new
// authentication (atlas.WithDigestSource, WithServiceAccountSource); a pair
// from the environment is fixed.
func atlasAuth(creds Credentials, reports reloadReporter) (atlas.Option, error) {
	if creds.PublicKeyFile != "" || creds.PrivateKeyFile != "" || creds.ClientIDFile != "" || creds.ClientSecretFile != "" {
		reports.metrics.InitializeReloads(whatCredentials)
	}
	switch creds.Mode() {
	case "digest":
		if creds.PublicKeyFile == "" && creds.PrivateKeyFile == "" {
			return atlas.WithDigest(creds.PublicKey, creds.PrivateKey), nil
		}
		return atlas.WithDigestSource(credentialPair(reports,
			&credentialValue{name: EnvPublicKey, path: creds.PublicKeyFile, value: creds.PublicKey},
			&credentialValue{name: EnvPrivateKey, path: creds.PrivateKeyFile, value: creds.PrivateKey})), nil
	case "service-account":
		if creds.ClientIDFile == "" && creds.ClientSecretFile == "" {
			return atlas.WithServiceAccount(creds.ClientID, creds.ClientSecret), nil
		}
		return atlas.WithServiceAccountSource(credentialPair(reports,
			&credentialValue{name: EnvClientID, path: creds.ClientIDFile, value: creds.ClientID},
			&credentialValue{name: EnvClientSecret, path: creds.ClientSecretFile, value: creds.ClientSecret})), nil
	}
	return nil, errors.New("no Atlas credentials: set " + EnvPublicKey + " and " + EnvPrivateKey + ", or " + EnvClientID + " and " + EnvClientSecret)
}

// credentialPair is the atlas.CredentialSource of two values.
func credentialPair(reports reloadReporter, first, second *credentialValue) atlas.CredentialSource {
	return func() (string, string, error) {
		return first.current(reports), second.current(reports), nil
	}
}

// credentialValue is one credential: fixed (from the environment) or read
// again from its file each time it is asked for.
type credentialValue struct {
	name string // the variable, without fileSuffix
	path string // "" for a value from the environment

	// mu serializes the reads, so that a slow read of the old content
	// cannot overwrite a newer one.
	mu    sync.Mutex
	value string // the last value read
}

// current returns the file's content, or the value last read when the
// file cannot be read: Kubernetes replaces a Secret volume's files
// atomically, so a failure is a fault the last value may outlive. Each
// change and each failure is logged and counted as a reload of
// "atlas_credentials"; neither log names the value.
func (v *credentialValue) current(reports reloadReporter) string {
	if v.path == "" {
		return v.value
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	value, err := readCredentialFile(v.path)
	switch {
	case err != nil:
		reports.report(whatCredentials, triggerAuthentication, "", false, fmt.Errorf("%s: %w", v.name+fileSuffix, err))
	case value != v.value:
		v.value = value
		reports.report(whatCredentials, triggerAuthentication, v.name+fileSuffix+" "+v.path+" has a new value", true, nil)
	}
	return v.value
}
