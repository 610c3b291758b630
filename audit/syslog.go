package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
)

// Syslog facility and severities used by SyslogExporter (RFC 5424,
// section 6.2.1).
const (
	syslogFacilityLogAudit = 13
	syslogSeverityWarning  = 4
	syslogSeverityNotice   = 5
)

// SyslogExporter sends each record as one RFC 5424 syslog message whose
// MSG is the record's JSON: one datagram per record over "udp" and
// "unixgram", octet-counted framing (RFC 6587, section 3.4.1) over "tcp"
// and "unix". Facility is 13 (log audit); severity is notice, or warning
// for denials and errors.
type SyslogExporter struct {
	network, addr string
	tag, host     string
	pid           int
	mu            sync.Mutex
	conn          net.Conn
}

// NewSyslogExporter returns an exporter sending to addr over network
// ("udp", "tcp", "unix" or "unixgram"); tag is the APP-NAME (default
// "mcpgate"). The connection is made at the first Export and made again
// after an error.
func NewSyslogExporter(network, addr, tag string) (Exporter, error) {
	switch network {
	case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6", "unix", "unixgram":
	default:
		return nil, fmt.Errorf("audit: syslog: unsupported network %q", network)
	}
	if addr == "" {
		return nil, errors.New("audit: syslog: empty address")
	}
	if tag == "" {
		tag = "mcpgate"
	}
	if err := checkHeaderField("tag", tag, 48); err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil || checkHeaderField("hostname", host, 255) != nil {
		host = "-"
	}
	return &SyslogExporter{network: network, addr: addr, tag: tag, host: host, pid: os.Getpid()}, nil
}

// checkHeaderField enforces RFC 5424's PRINTUSASCII header fields.
func checkHeaderField(name, v string, max int) error {
	if len(v) == 0 || len(v) > max {
		return fmt.Errorf("audit: syslog: %s must be 1 to %d characters", name, max)
	}
	for i := range len(v) {
		if v[i] < 33 || v[i] > 126 {
			return fmt.Errorf("audit: syslog: %s %q: only printable ASCII without spaces is allowed", name, v)
		}
	}
	return nil
}

func (e *SyslogExporter) stream() bool {
	switch e.network {
	case "tcp", "tcp4", "tcp6", "unix":
		return true
	}
	return false
}

// format returns the RFC 5424 message for r.
func (e *SyslogExporter) format(r *Record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: syslog: record %d: %w", r.Seq, err)
	}
	sev := syslogSeverityNotice
	if r.Decision == DecisionDeny || r.Outcome == OutcomeError || r.Outcome == OutcomeDenied {
		sev = syslogSeverityWarning
	}
	ts := r.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	msg := fmt.Appendf(nil, "<%d>1 %s %s %s %d audit - ", syslogFacilityLogAudit*8+sev, ts, e.host, e.tag, e.pid)
	msg = append(msg, body...)
	if e.stream() {
		msg = append(strconv.AppendInt(nil, int64(len(msg)), 10), append([]byte{' '}, msg...)...)
	}
	return msg, nil
}

// formatCheckpoint returns the RFC 5424 message for c: MSGID
// "checkpoint", severity notice, MSG the checkpoint's JSON line.
func (e *SyslogExporter) formatCheckpoint(c *Checkpoint) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("audit: syslog: checkpoint %d: %w", c.Seq, err)
	}
	ts := c.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	msg := fmt.Appendf(nil, "<%d>1 %s %s %s %d checkpoint - ", syslogFacilityLogAudit*8+syslogSeverityNotice, ts, e.host, e.tag, e.pid)
	msg = append(msg, body...)
	if e.stream() {
		msg = append(strconv.AppendInt(nil, int64(len(msg)), 10), append([]byte{' '}, msg...)...)
	}
	return msg, nil
}

// ExportCheckpoint implements CheckpointSink.
func (e *SyslogExporter) ExportCheckpoint(ctx context.Context, c *Checkpoint) error {
	msg, err := e.formatCheckpoint(c)
	if err != nil {
		return err
	}
	return e.send(ctx, [][]byte{msg})
}

// Export implements Exporter.
func (e *SyslogExporter) Export(ctx context.Context, recs []*Record) error {
	msgs := make([][]byte, len(recs))
	for i, r := range recs {
		msg, err := e.format(r)
		if err != nil {
			return err
		}
		msgs[i] = msg
	}
	return e.send(ctx, msgs)
}

// send writes msgs on the connection, dialling first if needed.
func (e *SyslogExporter) send(ctx context.Context, msgs [][]byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, e.network, e.addr)
		if err != nil {
			return fmt.Errorf("audit: syslog: %w", err)
		}
		e.conn = c
	}
	if dl, ok := ctx.Deadline(); ok {
		e.conn.SetWriteDeadline(dl)
	} else {
		e.conn.SetWriteDeadline(time.Time{})
	}
	for _, msg := range msgs {
		if _, err := e.conn.Write(msg); err != nil {
			e.conn.Close()
			e.conn = nil
			return fmt.Errorf("audit: syslog: %w", err)
		}
	}
	return nil
}

// Close implements Exporter.
func (e *SyslogExporter) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil
	}
	err := e.conn.Close()
	e.conn = nil
	return err
}
