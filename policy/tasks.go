package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"
)

// Policy over async work: who may start a task, for how long, and how
// many at once.
//
// A task-augmented tools/call carries a [TaskContext] (Request.Task),
// which becomes context.task = {ttl: Long, running: Long}, so that
// `forbid (...) when { context has task }` refuses tasks of a tool and a
// condition can read the requested ttl or the running tasks. Permits can
// also carry limits as annotations, which the gateway enforces with
// errors that name the limit:
//
//	@max_task_ttl("10m")       // the longest ttl a task may ask for
//	@max_concurrent_tasks("3") // the most non-terminal tasks of the principal
//
// When several matching permits carry a limit, the smallest applies.

// Task annotations on permits.
const (
	// AnnotationMaxTaskTTL bounds the ttl of the tasks a permit lets a
	// principal start: @max_task_ttl("10m") (a Go duration, at least 1s).
	AnnotationMaxTaskTTL = "max_task_ttl"
	// AnnotationMaxConcurrentTasks bounds the non-terminal tasks of the
	// principal when a permit lets it start one:
	// @max_concurrent_tasks("3") (a positive integer).
	AnnotationMaxConcurrentTasks = "max_concurrent_tasks"
)

// TaskContext describes the task a task-augmented request would create:
// context.task.
type TaskContext struct {
	// TTL is the ttl the task asks for, after the gateway's own cap
	// (context.task.ttl, in milliseconds; 0 when it asks for none).
	TTL time.Duration
	// Running is how many non-terminal tasks the principal has now,
	// through this gateway (context.task.running).
	Running int
}

// TaskLimits are the limits the matching permits of an allow set on a
// task-augmented request (zero: no limit), with the ids of the policies
// that set them.
type TaskLimits struct {
	MaxTTL              time.Duration
	MaxTTLPolicy        string
	MaxConcurrent       int
	MaxConcurrentPolicy string
}

// record returns context.task.
func (t *TaskContext) record() types.Record {
	return types.NewRecord(types.RecordMap{
		"ttl":     types.Long(t.TTL.Milliseconds()),
		"running": types.Long(t.Running),
	})
}

// parseTaskAnnotation checks a task annotation's value; it returns the
// problem or "".
func parseTaskAnnotation(p *compiledPolicy, key, v string) string {
	if p.forbid {
		return fmt.Sprintf("@%s on a forbid policy has no effect; put it on a permit", key)
	}
	switch key {
	case AnnotationMaxTaskTTL:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < time.Second {
			return fmt.Sprintf(`@%s must be a duration of at least 1s, such as @%s("10m"), got %q`, key, key, v)
		}
		p.maxTaskTTL = d
	case AnnotationMaxConcurrentTasks:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return fmt.Sprintf(`@%s must be a positive integer, such as @%s("3"), got %q`, key, key, v)
		}
		p.maxConcurrentTasks = n
	}
	return ""
}

// addTaskLimits folds the limits of one matching permit into l.
func (l *TaskLimits) add(p *compiledPolicy) {
	if p.maxTaskTTL > 0 && (l.MaxTTL == 0 || p.maxTaskTTL < l.MaxTTL) {
		l.MaxTTL, l.MaxTTLPolicy = p.maxTaskTTL, p.id
	}
	if p.maxConcurrentTasks > 0 && (l.MaxConcurrent == 0 || p.maxConcurrentTasks < l.MaxConcurrent) {
		l.MaxConcurrent, l.MaxConcurrentPolicy = p.maxConcurrentTasks, p.id
	}
}
