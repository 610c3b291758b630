// Package ratelimit limits request rates per user, per client and per tool
// with token buckets. Limits are configured in a small YAML (or JSON) file
// kept beside the policies; see docs/policy.md.
//
// Memory is bounded: a bucket that has been idle long enough to refill
// completely is indistinguishable from a new one and is dropped, and past
// MaxBuckets the least recently used bucket is dropped.
package ratelimit

import (
	"container/list"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml"
)

// Key describes one request for rate limiting.
type Key struct {
	// User is the end user, "" for machine-to-machine clients.
	User string
	// Client is the OAuth client id.
	Client string
	// Tool is "<upstream>/<tool>" for a tool call, "" otherwise.
	Tool string
}

// Config is the content of a limits file.
type Config struct {
	Limits []Limit `yaml:"limits" json:"limits"`
}

// Limit is one rule: requests whose key matches Match share token buckets,
// one bucket per distinct combination of the Per dimensions.
type Limit struct {
	// Name identifies the rule in logs and errors; optional.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Match selects the requests the rule applies to.
	Match Match `yaml:"match" json:"match"`
	// Per lists the dimensions ("user", "client", "tool") that get
	// separate buckets. Absent means the dimensions Match names; an empty
	// list means one bucket shared by every matching request.
	Per *[]string `yaml:"per,omitempty" json:"per,omitempty"`
	// Rate is "<count>/<unit>" with unit s, min, h or day (also second,
	// minute, hour, sec, m, d), e.g. "10/s", "100/min", "0.5/s".
	Rate string `yaml:"rate" json:"rate"`
	// Burst is the bucket size; zero means the rate's count rounded up
	// (at least 1).
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
}

// Match patterns: "" matches anything (including an empty value); any
// other pattern matches only a non-empty value, where "*" stands for any
// run of characters (including "/"), e.g. "fs/delete_*" or "*".
type Match struct {
	User   string `yaml:"user,omitempty" json:"user,omitempty"`
	Client string `yaml:"client,omitempty" json:"client,omitempty"`
	Tool   string `yaml:"tool,omitempty" json:"tool,omitempty"`
}

// maxLimits bounds the rules of one file.
const maxLimits = 1000

// ParseConfig parses a limits file (YAML, or JSON which is valid YAML).
// Unknown fields, duplicate keys and invalid rates are errors.
func ParseConfig(data []byte) (*Config, error) {
	var cfg Config
	if err := unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	if _, err := compile(&cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// unmarshal decodes YAML strictly. The YAML decoder panics on some
// malformed documents (found by FuzzParseConfig); such a panic becomes an
// error.
func unmarshal(data []byte, cfg *Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML: %v", r)
		}
	}()
	return yaml.UnmarshalWithOptions(data, cfg, yaml.DisallowUnknownField())
}

// LoadConfig reads and parses a limits file.
func LoadConfig(name string) (*Config, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

// ParseRate parses "<count>/<unit>" into tokens per second.
func ParseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("rate %q: want <count>/<unit>, e.g. 10/s or 100/min", s)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || math.IsNaN(count) || math.IsInf(count, 0) || count <= 0 || count > 1e9 {
		return 0, fmt.Errorf("rate %q: count must be a number between 0 and 1e9 (exclusive of 0)", s)
	}
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	case "d", "day":
		per = 24 * time.Hour
	default:
		return 0, fmt.Errorf("rate %q: unknown unit %q (use s, min, h or day)", s, unit)
	}
	return count / per.Seconds(), nil
}

// rule is a compiled [Limit].
type rule struct {
	name                        string
	match                       Match
	perUser, perClient, perTool bool
	rate                        float64 // tokens per second
	burst                       float64
}

func compile(cfg *Config) ([]rule, error) {
	if len(cfg.Limits) > maxLimits {
		return nil, fmt.Errorf("rate limits: %d rules, at most %d allowed", len(cfg.Limits), maxLimits)
	}
	rules := make([]rule, 0, len(cfg.Limits))
	for i, l := range cfg.Limits {
		name := l.Name
		if name == "" {
			name = fmt.Sprintf("limits[%d]", i)
		}
		r := rule{name: name, match: l.Match}
		rate, err := ParseRate(l.Rate)
		if err != nil {
			return nil, fmt.Errorf("rate limits: %s: %w", name, err)
		}
		r.rate = rate
		if l.Burst < 0 || l.Burst > 1e9 {
			return nil, fmt.Errorf("rate limits: %s: burst %d out of range", name, l.Burst)
		}
		r.burst = float64(l.Burst)
		if l.Burst == 0 {
			count, _ := strconv.ParseFloat(strings.TrimSpace(strings.SplitN(l.Rate, "/", 2)[0]), 64)
			r.burst = max(1, math.Ceil(count))
		}
		if l.Per == nil {
			r.perUser, r.perClient, r.perTool = l.Match.User != "", l.Match.Client != "", l.Match.Tool != ""
		} else {
			for _, d := range *l.Per {
				switch d {
				case "user":
					r.perUser = true
				case "client":
					r.perClient = true
				case "tool":
					r.perTool = true
				default:
					return nil, fmt.Errorf("rate limits: %s: unknown per dimension %q (use user, client, tool)", name, d)
				}
			}
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func (r *rule) matches(k *Key) bool {
	return glob(r.match.User, k.User) && glob(r.match.Client, k.Client) && glob(r.match.Tool, k.Tool)
}

// glob matches s against pattern, where "*" matches any run of characters.
// An empty pattern matches anything; a non-empty one never matches "".
func glob(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	if s == "" {
		return false
	}
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}

// Options configures a [Limiter].
type Options struct {
	// MaxBuckets bounds the number of live buckets; zero means 100000.
	MaxBuckets int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

type bucketKey struct {
	rule               int
	user, client, tool string
}

type bucket struct {
	key    bucketKey
	tokens float64
	last   time.Time
	full   time.Time // when the bucket will be full again if left alone
}

// Limiter enforces a [Config]. It is safe for concurrent use.
type Limiter struct {
	now func() time.Time
	max int

	mu      sync.Mutex
	rules   []rule
	buckets map[bucketKey]*list.Element
	lru     list.List // front: most recently used
}

// NewLimiter returns a limiter for cfg; a nil cfg limits nothing.
func NewLimiter(cfg *Config, opts *Options) (*Limiter, error) {
	if opts == nil {
		opts = &Options{}
	}
	l := &Limiter{now: opts.Now, max: opts.MaxBuckets, buckets: map[bucketKey]*list.Element{}}
	if l.now == nil {
		l.now = time.Now
	}
	if l.max <= 0 {
		l.max = 100000
	}
	if err := l.SetConfig(cfg); err != nil {
		return nil, err
	}
	return l, nil
}

// SetConfig replaces the rules and forgets every bucket. On error the
// limiter keeps its current rules.
func (l *Limiter) SetConfig(cfg *Config) error {
	var rules []rule
	if cfg != nil {
		var err error
		if rules, err = compile(cfg); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rules = rules
	clear(l.buckets)
	l.lru.Init()
	return nil
}

// Len returns the number of live buckets.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Allow takes one token from every bucket of every rule that matches key,
// and only if all of them have one. When a bucket is empty it returns false
// and how long until every such bucket holds a token again.
func (l *Limiter) Allow(key Key) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var stack [8]*bucket
	hit := stack[:0]
	for i := range l.rules {
		r := &l.rules[i]
		if !r.matches(&key) {
			continue
		}
		bk := bucketKey{rule: i}
		if r.perUser {
			bk.user = key.User
		}
		if r.perClient {
			bk.client = key.Client
		}
		if r.perTool {
			bk.tool = key.Tool
		}
		b := l.bucket(bk, r, now)
		if b.tokens < 1 {
			wait := time.Duration(math.Ceil((1 - b.tokens) / r.rate * float64(time.Second)))
			retryAfter = max(retryAfter, wait)
		}
		hit = append(hit, b)
	}
	if retryAfter > 0 {
		l.evict(now)
		return false, retryAfter
	}
	for _, b := range hit {
		r := &l.rules[b.key.rule]
		b.tokens--
		b.full = now.Add(time.Duration((r.burst - b.tokens) / r.rate * float64(time.Second)))
	}
	l.evict(now)
	return true, 0
}

// bucket returns the refilled bucket for k, creating it full.
func (l *Limiter) bucket(k bucketKey, r *rule, now time.Time) *bucket {
	if e, ok := l.buckets[k]; ok {
		b := e.Value.(*bucket)
		if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
			b.tokens = min(r.burst, b.tokens+elapsed*r.rate)
		}
		b.last = now
		l.lru.MoveToFront(e)
		return b
	}
	b := &bucket{key: k, tokens: r.burst, last: now, full: now}
	l.buckets[k] = l.lru.PushFront(b)
	return b
}

// evict drops the least recently used buckets beyond the bound and, a few
// at a time, those that are full again.
func (l *Limiter) evict(now time.Time) {
	for len(l.buckets) > l.max {
		l.remove(l.lru.Back())
	}
	for range 4 {
		e := l.lru.Back()
		if e == nil || now.Before(e.Value.(*bucket).full) {
			return
		}
		l.remove(e)
	}
}

func (l *Limiter) remove(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).key)
	l.lru.Remove(e)
}
